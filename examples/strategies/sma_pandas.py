"""Moving-average crossover with pandas: the numeric twin of sma_crossover.py.

Reads {"symbol": ..., "bars": [{"date", "close", ...}, ...]} on stdin, goes long when the
fast simple moving average crosses above the slow one and flat when it crosses below, and
prints the trades and a summary (return, annualised Sharpe ratio, drawdown) as JSON. Same
rules and same numbers as the pure-Python sma_crossover.py; pandas routes it to the
container backend.

    stratbox run examples/strategies/sma_pandas.py --input examples/data/prices.json --profile numeric
"""

import json
import sys

import numpy as np
import pandas as pd

FAST, SLOW = 10, 30
TRADING_DAYS = 252


def backtest(bars):
    """Trades (date, action, price) and the strategy's daily returns."""
    close = bars["close"].astype(float)
    fast = close.rolling(FAST).mean()
    slow = close.rolling(SLOW).mean()
    prev_fast, prev_slow = fast.shift(1), slow.shift(1)
    ready = prev_fast.notna() & prev_slow.notna()
    up = ready & (prev_fast <= prev_slow) & (fast > slow)
    down = ready & (prev_fast >= prev_slow) & (fast < slow)
    # 1 from a crossing up, 0 from a crossing down, carried forward: the position held
    # after each bar's close.
    position = pd.Series(np.nan, index=close.index)
    position[up] = 1.0
    position[down] = 0.0
    position = position.ffill().fillna(0.0)
    # A day's return belongs to the position held at the previous close.
    daily = (close.pct_change() * position.shift(1)).iloc[1:].fillna(0.0)
    changes = position.diff().fillna(0.0)
    trades = bars.loc[changes != 0, ["date", "close"]].assign(
        action=np.where(changes[changes != 0] > 0, "buy", "sell")
    )
    return trades, daily


def summary(daily):
    equity = (1.0 + daily).cumprod()
    drawdown = (1.0 - equity / equity.cummax()).max()
    sd = daily.std(ddof=0)
    sharpe = daily.mean() / sd * np.sqrt(TRADING_DAYS) if sd else 0.0
    return {
        "total_return": round(float(equity.iloc[-1] - 1.0), 6),
        "sharpe": round(float(sharpe), 4),
        "max_drawdown": round(float(drawdown), 6),
    }


def main():
    data = json.load(sys.stdin)
    bars = pd.DataFrame(data["bars"])
    trades, daily = backtest(bars)
    for row in trades.itertuples():
        print(f"{row.date} {row.action:<4} @ {row.close:.2f}")
    result = {"symbol": data["symbol"], "bars": len(bars), "trades": len(trades)}
    result.update(summary(daily))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
