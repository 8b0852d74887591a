"""Pure-Python SMA crossover over 200,000 synthetic bars generated from a seeded RNG."""

import json
import random
from itertools import accumulate
from operator import mul

BARS = 200_000
FAST = 20
SLOW = 50

# A random walk of daily returns within +/-1%, from a fixed seed: the same bars every run.
step = random.Random(7).random
closes = list(accumulate((0.99 + 0.02 * step() for _ in range(BARS)), mul, initial=100.0))

fast_sum = sum(closes[SLOW - FAST : SLOW])
slow_sum = sum(closes[:SLOW])
was_above = fast_sum * SLOW > slow_sum * FAST
position = 0
entry = 0.0
trades = 0
pnl = 0.0
for close, fast_out, slow_out in zip(closes[SLOW:], closes[SLOW - FAST :], closes):
    fast_sum += close - fast_out
    slow_sum += close - slow_out
    above = fast_sum * SLOW > slow_sum * FAST
    if above is not was_above:
        if position:
            pnl += position * (close - entry)
        position = 1 if above else -1
        entry = close
        trades += 1
        was_above = above

print(json.dumps({"bars": BARS, "trades": trades, "pnl": round(pnl, 4), "last": round(closes[-1], 4)}))
