import pytest
import torch

from tefviz.device import device_info, pick_device, pick_dtype
from tefviz.errors import InputError


def test_env_override_picks_cpu(monkeypatch):
    monkeypatch.setenv("TEFVIZ_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")


def test_bad_device_name_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TEFVIZ_DEVICE", "quantum")
    with pytest.raises(InputError, match="not a device name"):
        pick_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_requested_without_cuda(monkeypatch):
    monkeypatch.setenv("TEFVIZ_DEVICE", "cuda")
    with pytest.raises(InputError, match="not available"):
        pick_device()


def test_dtype_override_and_validation(monkeypatch):
    monkeypatch.setenv("TEFVIZ_DTYPE", "float32")
    assert pick_dtype(torch.device("cpu"))[0] == torch.float32
    monkeypatch.setenv("TEFVIZ_DTYPE", "int3")
    with pytest.raises(InputError, match="TEFVIZ_DTYPE"):
        pick_dtype(torch.device("cpu"))


def test_cpu_dtype_follows_native_bf16(monkeypatch):
    monkeypatch.delenv("TEFVIZ_DTYPE", raising=False)
    monkeypatch.setattr("tefviz.device._cpu_has_bf16", lambda: True)
    assert pick_dtype(torch.device("cpu"))[0] == torch.bfloat16
    monkeypatch.setattr("tefviz.device._cpu_has_bf16", lambda: False)
    assert pick_dtype(torch.device("cpu"))[0] == torch.float32


def test_device_info_describes_hardware():
    info = device_info()
    assert info.name and info.detail and info.bf16_reason
