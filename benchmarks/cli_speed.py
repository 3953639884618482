"""Start-up cost of the command line against bare Python and ``import pandas`` (not a test).

Runs each command ``--repeats`` times in fresh processes (hyperfine-like: one warm-up run,
then the median wall time) and prints

* ``version ratio: X`` = ``crackdown --version`` / (``python -c pass`` + 0.1 s); goal <= 1.2;
* ``study ratio: X`` = ``crackdown study EVENT --format csv`` / ``python -c "import pandas"``;
  goal <= 2;

with the load average next to the numbers, and the ten slowest imports of each command
(``python -X importtime``). The study needs the price snapshot (``$CRACKDOWN_PRICES_DIR``).
Run::

    python benchmarks/cli_speed.py --event ant_ipo_suspended --repeats 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

PY = sys.executable


def _wall(cmd: list[str], repeats: int) -> float:
    """Median wall time of ``cmd`` over ``repeats`` runs after one warm-up (output checked)."""
    subprocess.run(cmd, check=True, capture_output=True)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _slowest_imports(cmd: list[str], n: int = 10) -> list[tuple[float, str]]:
    """The ``n`` largest cumulative import times (s) of ``python -X importtime`` ``cmd``."""
    proc = subprocess.run([PY, "-X", "importtime", *cmd[1:]], capture_output=True, text=True,
                          check=True)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self, cumulative, name = (p for p in line.replace("import time:", "").split("|"))
        if not name[2:].startswith(" "):  # top-level imports only (importtime indents nesting)
            rows.append((int(cumulative) / 1e6, name.strip()))
    return sorted(rows, reverse=True)[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--event", default="ant_ipo_suspended", help="event_id for the study")
    parser.add_argument("--repeats", type=int, default=5, help="runs per command (median)")
    args = parser.parse_args()
    version = [PY, "-m", "crackdown", "--version"]
    study = [PY, "-m", "crackdown", "study", args.event, "--format", "csv"]
    print(f"load average {os.getloadavg()[0]:.2f}, {args.repeats} runs per command (median)")
    base = _wall([PY, "-c", "pass"], args.repeats)
    pandas = _wall([PY, "-c", "import pandas"], args.repeats)
    t_version = _wall(version, args.repeats)
    t_study = _wall(study, args.repeats)
    print(f"python -c pass        {base:.3f} s")
    print(f"python -c 'import pandas' {pandas:.3f} s")
    print(f"crackdown --version   {t_version:.3f} s")
    print(f"crackdown study {args.event} --format csv {t_study:.3f} s")
    for label, cmd in (("--version", version), ("study", study)):
        print(f"slowest imports of {label} (cumulative s):")
        for seconds, name in _slowest_imports(cmd):
            print(f"  {seconds:6.3f} {name}")
    print(f"load average {os.getloadavg()[0]:.2f}")
    print(f"version ratio: {t_version / (base + 0.1):.2f}")
    print(f"study ratio: {t_study / pandas:.2f}")


if __name__ == "__main__":
    main()
