"""json + statistics + datetime + decimal + re over a small input document."""

import datetime
import json
import re
import statistics
import sys
from decimal import Decimal

doc = json.load(sys.stdin)
bars = doc["bars"][:120]
closes = [bar["close"] for bar in bars]
dates = [datetime.date.fromisoformat(bar["date"]) for bar in bars]
weekdays = statistics.mode(d.weekday() for d in dates)
span = (dates[-1] - dates[0]).days
notional = sum(Decimal(str(c)) * 100 for c in closes)
symbol_ok = bool(re.fullmatch(r"[A-Z]{1,6}", doc["symbol"]))
print(
    json.dumps(
        {
            "mean": round(statistics.fmean(closes), 4),
            "stdev": round(statistics.stdev(closes), 4),
            "median": statistics.median(closes),
            "span_days": span,
            "common_weekday": weekdays,
            "notional": str(notional.quantize(Decimal("0.01"))),
            "symbol_ok": symbol_ok,
        }
    )
)
