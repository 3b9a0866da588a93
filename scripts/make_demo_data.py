"""Derive config/demo/sp500-prices.csv from the S&P 500 data set that ships with river.

river's file holds the daily returns (in percent) of ten large S&P 500 stocks, Feb 2013
to Feb 2018. The demo replays them as price ticks: each stock's price starts at 100 and
compounds its returns. Run: .venv/bin/python scripts/make_demo_data.py
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import river.datasets

SOURCE = Path(river.datasets.__file__).parent / "sp500.csv.gz"
TARGET = Path(__file__).parents[1] / "config" / "demo" / "sp500-prices.csv"


def main() -> None:
    with gzip.open(SOURCE, "rt", newline="") as stream:
        rows = list(csv.DictReader(stream))
    tickers = [name for name in rows[0] if name not in ("date", "next_day_return")]
    price = dict.fromkeys(tickers, 100.0)
    with TARGET.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["date", "symbol", "price"])
        for row in rows:
            for ticker in tickers:
                price[ticker] *= 1 + float(row[ticker]) / 100
                writer.writerow([row["date"], ticker, f"{price[ticker]:.4f}"])
    print(f"{TARGET}: {len(rows) * len(tickers)} ticks, {len(tickers)} symbols")


if __name__ == "__main__":
    main()
