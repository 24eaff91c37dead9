import pytest
import torch

from epimpute.errors import InputError
from epimpute.hardware import native_bf16, resolve_device, uses_bf16


def test_explicit_precisions_win_over_the_hardware():
    cpu = torch.device("cpu")
    assert uses_bf16("bf16", cpu) is True
    assert uses_bf16("fp32", cpu) is False


def test_auto_precision_follows_native_bf16_support():
    cpu = torch.device("cpu")
    assert uses_bf16("auto", cpu) == native_bf16(cpu)


def test_unknown_precision_is_rejected():
    with pytest.raises(ValueError, match="precision must be one of"):
        uses_bf16("fp16", torch.device("cpu"))


def test_cuda_request_without_cuda_is_an_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(InputError, match="no CUDA device"):
        resolve_device("cuda")


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "", "cpu:0:1"])
def test_bad_device_names_are_input_errors(name):
    with pytest.raises(InputError, match=f"--device {name}: expected auto, cpu, cuda or cuda:N"):
        resolve_device(name)


def test_cuda_index_beyond_the_devices_is_an_input_error():
    name = f"cuda:{torch.cuda.device_count()}"
    with pytest.raises(InputError, match="CUDA device"):
        resolve_device(name)


def test_library_callers_get_the_input_error_of_the_command_line(tmp_path):
    from epimpute import api

    with pytest.raises(InputError, match="--device tpu"):
        api.impute(tmp_path / "model", tmp_path / "store", tmp_path / "out", device="tpu")


def test_auto_device_is_cuda_only_when_present():
    assert resolve_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_bf16_edice_imputation_stays_close_to_fp32():
    from epimpute.hardware import autocast
    from epimpute.models.edice import Edice, EdiceConfig, EdiceImputer
    from epimpute.models.layout import Layout

    keys = [f"c{b}:a{a}" for b in range(3) for a in range(3) if (b, a) != (2, 2)]
    torch.manual_seed(0)
    imputer = EdiceImputer(Edice(Layout.from_keys(keys, bin_size=25), EdiceConfig()))
    margin = imputer.context_bins
    signal = torch.rand(len(keys), 300 + 2 * margin).numpy() * 3
    available = torch.ones(len(keys), dtype=torch.bool).numpy()
    imputed = {}
    for enabled in (False, True):
        with autocast(torch.device("cpu"), enabled=enabled):
            imputed[enabled] = imputer.impute_region(signal, available, [(2, 2), (0, 1)],
                                                     contig="c", start=0)
    difference = abs(imputed[True] - imputed[False])
    # bf16 keeps 8 significant bits: outputs of size ~1 move by ~1e-2, not more.
    assert 0 < difference.max() < 0.1
