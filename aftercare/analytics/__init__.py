"""Analytics: journey funnels, delivery and engagement, A/B results and time series, read from rollup
tables that database triggers keep in the transaction of each fact (`models/analytics_tables.py`)."""
