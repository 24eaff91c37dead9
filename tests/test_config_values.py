import math

import pytest

from epimpute.config_values import check_values
from epimpute.errors import InputError
from epimpute.models.avocado import AvocadoConfig
from epimpute.models.edice import EdiceConfig
from epimpute.training.avocado import AvocadoTrainingConfig
from epimpute.training.edice import EdiceTrainingConfig


def test_good_values_pass_and_lists_become_tuples():
    checked = check_values(EdiceConfig, {"windows": [1, 3], "dropout": 0, "gain": False},
                           where="f [model]")
    assert checked == {"windows": (1, 3), "dropout": 0.0, "gain": False}
    assert isinstance(checked["dropout"], float)
    assert check_values(AvocadoConfig, {"genome_factors": None, "members": 2}, where="f") == {
        "genome_factors": None, "members": 2}


@pytest.mark.parametrize(("cls", "values", "message"), [
    (EdiceTrainingConfig, {"batch_size": 0}, "'batch_size' must be at least 1, got 0"),
    (EdiceTrainingConfig, {"batch_size": 2.5}, "'batch_size' must be an integer"),
    (EdiceTrainingConfig, {"batch_size": True}, "'batch_size' must be an integer"),
    (EdiceTrainingConfig, {"max_epochs": None}, "'max_epochs' must not be null"),
    (EdiceTrainingConfig, {"learning_rate": 0}, "'learning_rate' must be above 0"),
    (EdiceTrainingConfig, {"learning_rate": math.inf}, "'learning_rate' must be finite"),
    (EdiceTrainingConfig, {"ema_decay": 1.0}, "'ema_decay' must be at least 0 and below 1"),
    (EdiceTrainingConfig, {"max_masked_fraction": 0.0}, "'max_masked_fraction' must be above 0"),
    (EdiceTrainingConfig, {"mask_unit": 3}, "'mask_unit' must be a string"),
    (EdiceTrainingConfig, {"patience": -1}, "'patience' must be at least 0"),
    (EdiceConfig, {"windows": [1, 0]}, "'windows' must be at least 1, got 0"),
    (EdiceConfig, {"windows": 3}, "'windows' must be a list"),
    (EdiceConfig, {"residual": "yes"}, "'residual' must be true or false"),
    (AvocadoTrainingConfig, {"lr_decay": 1.5}, "'lr_decay' must be above 0 and at most 1"),
    (AvocadoConfig, {"members": 0}, "'members' must be at least 1"),
])
def test_bad_values_name_the_key_and_range(cls, values, message):
    with pytest.raises(InputError, match="^f \\[x\\]: " + message.replace("(", r"\(")):
        check_values(cls, values, where="f [x]")
