"""Generates data/prices.json: 500 synthetic daily bars (a seeded geometric random walk).

    python3 examples/data/make_prices.py > examples/data/prices.json
"""

import datetime
import json
import math
import random


def main():
    rng = random.Random(20240101)
    price = 100.0
    day = datetime.date(2023, 1, 2)
    bars = []
    while len(bars) < 500:
        if day.weekday() < 5:  # trading days only
            drift, vol = 0.0003, 0.015
            ret = drift + vol * rng.gauss(0.0, 1.0) + 0.004 * math.sin(len(bars) / 40.0)
            open_ = price
            price = max(1.0, price * math.exp(ret))
            high = max(open_, price) * (1 + abs(rng.gauss(0, 0.004)))
            low = min(open_, price) * (1 - abs(rng.gauss(0, 0.004)))
            bars.append(
                {
                    "date": day.isoformat(),
                    "open": round(open_, 4),
                    "high": round(high, 4),
                    "low": round(low, 4),
                    "close": round(price, 4),
                    "volume": int(1_000_000 * (1 + abs(rng.gauss(0, 0.3)))),
                }
            )
        day += datetime.timedelta(days=1)
    json.dump({"symbol": "SYNTH", "bars": bars}, indent=None, fp=__import__("sys").stdout)
    print()


if __name__ == "__main__":
    main()
