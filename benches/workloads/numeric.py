"""numpy/pandas SMA crossover and Sharpe ratio over synthetic bars (a native-extension workload)."""

import json

import numpy as np
import pandas as pd

BARS = 200_000

rng = np.random.default_rng(7)
closes = pd.Series(100.0 * np.cumprod(1.0 + rng.normal(0.0, 0.01, BARS)))
fast = closes.rolling(20).mean()
slow = closes.rolling(50).mean()
position = np.sign(fast - slow).shift(1).fillna(0.0)
returns = closes.pct_change().fillna(0.0) * position
sharpe = float(returns.mean() / returns.std() * np.sqrt(252))
trades = int((position.diff().abs() > 0).sum())
print(json.dumps({"bars": BARS, "trades": trades, "sharpe": round(sharpe, 4)}))
