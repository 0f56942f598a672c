# The Aftercare image: API (`aftercare api`), worker (`aftercare worker`) and migrations (`aftercare migrate`).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# DejaVu prints the Cyrillic, Greek and extended Latin of patients' names and letters.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /app aftercare

COPY pyproject.toml README.md LICENSE NOTICE worker.py ./
COPY aftercare ./aftercare
COPY activities ./activities
COPY api ./api
COPY models ./models
COPY workflows ./workflows
COPY journeys ./journeys
COPY console ./console
COPY patient_pages ./patient_pages
RUN pip install . && python -m compileall -q /usr/local/lib/python3.11/site-packages && chown -R aftercare /app

USER aftercare
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["aftercare", "api", "--host", "0.0.0.0", "--port", "8000"]
