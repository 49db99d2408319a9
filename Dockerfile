FROM python:3.12-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && useradd --system orbyt && mkdir -p /data/files && chown orbyt /data/files
USER orbyt
EXPOSE 8080
CMD ["orbyt", "api", "--host", "0.0.0.0", "--port", "8080"]
