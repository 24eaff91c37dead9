import dataclasses
import subprocess
import sys

import pytest

from epimpute.errors import InputError
from epimpute.registry import MODELS, model_spec


def test_every_model_names_a_trainer_its_configuration_and_an_extender():
    from epimpute.training.avocado import AvocadoTrainingConfig, train_avocado
    from epimpute.training.extend import extend_avocado

    spec = model_spec("avocado")
    assert spec.train is train_avocado and spec.training_config is AvocadoTrainingConfig
    assert spec.extend is extend_avocado
    for spec in MODELS.values():
        assert callable(spec.train) and callable(spec.extend)
        assert dataclasses.is_dataclass(spec.training_config)
    assert {n: s.imputer.reads_signal for n, s in MODELS.items()} == {
        "average": True, "edice": True, "avocado": False}
    with pytest.raises(InputError, match="unknown model 'nope'"):
        model_spec("nope")


def test_looking_up_models_to_load_them_imports_no_training_code():
    code = ("import sys; from epimpute.model_dir import load_model; "
            "from epimpute.registry import MODELS; [s.imputer for s in MODELS.values()]; "
            "print(sorted(m for m in sys.modules if m.startswith('epimpute.training')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
