import dataclasses
import subprocess
import sys

import pytest

from epimpute.errors import InputError
from epimpute.models.average import AverageImputer
from epimpute.models.avocado import AvocadoImputer
from epimpute.models.edice import EdiceImputer
from epimpute.registry import MODELS, build_config, model_spec
from epimpute.training.edice import EdiceTrainingConfig


@pytest.mark.parametrize(("name", "imputer"), [("average", AverageImputer),
                                               ("edice", EdiceImputer),
                                               ("avocado", AvocadoImputer)])
def test_lookup_by_name(name, imputer):
    spec = model_spec(name)
    assert spec.name == name and spec.imputer is imputer and spec.extend is not None


@pytest.mark.parametrize("name", ["Edice", "bogus", ""])
def test_unknown_names_list_the_known_ones(name):
    with pytest.raises(InputError, match=r"unknown model .*known: average, edice, avocado, seqcell"):
        model_spec(name)
    assert list(MODELS) == ["average", "edice", "avocado", "seqcell"]


def test_build_config_rejects_unknown_keys_and_bad_values():
    config = build_config(EdiceTrainingConfig, {"batch_size": 64, "ema_decay": None}, where="c")
    assert config.batch_size == 64 and config.ema_decay is None
    with pytest.raises(InputError, match=r"c: unknown key\(s\) batchsize; allowed: "):
        build_config(EdiceTrainingConfig, {"batchsize": 64}, where="c")
    with pytest.raises(InputError, match="c: expected a JSON object"):
        build_config(EdiceTrainingConfig, [1], where="c")


def test_every_model_names_a_trainer_its_configuration_and_an_extender():
    from epimpute.training.avocado import AvocadoTrainingConfig, train_avocado
    from epimpute.training.extend import extend_avocado

    spec = model_spec("avocado")
    assert spec.train is train_avocado and spec.training_config is AvocadoTrainingConfig
    assert spec.extend is extend_avocado
    for spec in MODELS.values():
        assert callable(spec.train)
        # seqcell takes a new cell type from its accessibility track alone: no extender
        assert callable(spec.extend) if spec.name != "seqcell" else spec.extend is None
        assert dataclasses.is_dataclass(spec.training_config)
    assert {n: s.imputer.reads_signal for n, s in MODELS.items()} == {
        "average": True, "edice": True, "avocado": False, "seqcell": True}
    with pytest.raises(InputError, match="unknown model 'nope'"):
        model_spec("nope")


def test_looking_up_models_to_load_them_imports_no_training_code():
    code = ("import sys; from epimpute.model_dir import load_model; "
            "from epimpute.registry import MODELS; [s.imputer for s in MODELS.values()]; "
            "print(sorted(m for m in sys.modules if m.startswith('epimpute.training')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
