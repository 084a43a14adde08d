"""`python -m tefviz check device` and `python -m tefviz info`."""

from __future__ import annotations

import argparse
from pathlib import Path

from tefviz.commands import Command

HELP = "end-to-end checks"


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", nargs="*", default=None, help="checks whose page or name contains these")
    p.add_argument("--budget-s", type=float, default=480, help="start no check after this many seconds")
    p.add_argument(
        "--attention-lengths",
        nargs="*",
        type=int,
        default=None,
        help="bench attention lengths (default: 4096 16384 65536 on a GPU, 1024 4096 on a CPU)",
    )
    p.add_argument("--approx-lengths", nargs="*", type=int, default=None, help="bench approx lengths")
    p.add_argument("--dtype", default=None, help="bench attention dtype (default: the device policy's)")
    p.add_argument("--out", type=Path, default=Path("artifacts/check_device.json"))


def _run_device(args: argparse.Namespace) -> None:
    from tefviz.device_check import check_device, exit_code

    report = check_device(
        args.out, args.only, args.budget_s, args.attention_lengths, args.approx_lengths, args.dtype
    )
    if exit_code(report):
        raise SystemExit(1)


def _add_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoints", type=Path, default=None)


def _run_info(args: argparse.Namespace) -> None:
    from tefviz.checkpoints import list_checkpoints
    from tefviz.device import device_info

    info = device_info()
    print(f"device: {info.device} ({info.name}; {info.detail}); dtype {info.dtype} ({info.bf16_reason})")
    for ck in list_checkpoints(args.checkpoints):
        status = "ok" if ck.error is None else f"unusable: {ck.error}"
        print(f"{ck.name}: {status}")


COMMANDS = {
    "device": Command(
        "every page's core pipeline and every benchmark on this device", _add_device, _run_device
    )
}
INFO = Command("device policy and the checkpoints present", _add_info, _run_info)
