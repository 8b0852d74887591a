"""Moving-average crossover on daily bars, in pure Python.

Reads {"symbol": ..., "bars": [{"date", "close", ...}, ...]} on stdin, goes long when the
fast simple moving average crosses above the slow one and flat when it crosses below, and
prints the signals and a summary (return, Sharpe ratio, drawdown) as JSON.

    stratbox run examples/strategies/sma_crossover.py --input examples/data/prices.json
"""

import json
import math
import statistics
import sys
from dataclasses import dataclass

FAST, SLOW = 10, 30
TRADING_DAYS = 252


@dataclass
class Signal:
    date: str
    action: str
    price: float


def sma(values, window):
    """Simple moving averages; None until the window is full."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / window if i >= window - 1 else None)
    return out


def backtest(bars):
    closes = [bar["close"] for bar in bars]
    fast, slow = sma(closes, FAST), sma(closes, SLOW)
    signals, position, daily = [], 0, []
    for i in range(1, len(bars)):
        if position:
            daily.append(closes[i] / closes[i - 1] - 1.0)
        else:
            daily.append(0.0)
        if None in (fast[i - 1], slow[i - 1]):
            continue
        crossed_up = fast[i - 1] <= slow[i - 1] and fast[i] > slow[i]
        crossed_down = fast[i - 1] >= slow[i - 1] and fast[i] < slow[i]
        if crossed_up and not position:
            position = 1
            signals.append(Signal(bars[i]["date"], "buy", closes[i]))
        elif crossed_down and position:
            position = 0
            signals.append(Signal(bars[i]["date"], "sell", closes[i]))
    return signals, daily


def summary(daily):
    equity, peak, drawdown = 1.0, 1.0, 0.0
    for r in daily:
        equity *= 1.0 + r
        peak = max(peak, equity)
        drawdown = max(drawdown, 1.0 - equity / peak)
    sd = statistics.pstdev(daily)
    sharpe = statistics.fmean(daily) / sd * math.sqrt(TRADING_DAYS) if sd else 0.0
    return {
        "total_return": round(equity - 1.0, 6),
        "sharpe": round(sharpe, 4),
        "max_drawdown": round(drawdown, 6),
    }


def main():
    data = json.load(sys.stdin)
    signals, daily = backtest(data["bars"])
    for s in signals:
        print(f"{s.date} {s.action:<4} @ {s.price:.2f}")
    result = {"symbol": data["symbol"], "bars": len(data["bars"]), "trades": len(signals)}
    result.update(summary(daily))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
