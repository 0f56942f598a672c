"""Analytics: journey funnels, delivery, engagement, A/B results and time series.

All read from rollup tables that database triggers keep in the transaction of each fact
(`models/analytics_tables.py`), never from a patient's rows."""
