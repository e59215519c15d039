"""A stand-in training process for `watchdog watch` tests: writes OpenRL-layout TensorBoard
events and log.txt over time, healthy first, then a value-loss climb. Usage: slow_writer.py RUN_DIR"""

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from watchdog.tfevents import ScalarWriter  # noqa: E402

run = Path(sys.argv[1])
n, onset, spi = 160, 100, 1000
writers = {}
for tag in ("value_loss", "critic_grad_norm", "average_step_reward"):
    (run / "logs" / tag / tag).mkdir(parents=True, exist_ok=True)
    writers[tag] = ScalarWriter(run / "logs" / tag / tag)
for it in range(n):
    vl = 0.006 * (1 + 0.3 * math.sin(it)) + 2.0 * math.exp(-it / 10)
    if it >= onset:
        vl *= math.exp(0.15 * (it - onset))
    values = {"value_loss": vl, "critic_grad_norm": 0.1 * math.sqrt(vl / 0.006), "average_step_reward": 0.02}
    for tag, value in values.items():
        writers[tag].add_scalar(tag, value, (it + 1) * spi)
        writers[tag].flush()
    if it % 20 == 0:
        time.sleep(0.05)
for w in writers.values():
    w.close()
