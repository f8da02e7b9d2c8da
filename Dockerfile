# CPU image for the worker (docker-compose.yml). On a GPU host, install a CUDA build of torch and
# the [gpu] extra (faiss-gpu) instead of [cpu].
FROM python:3.11-slim
WORKDIR /app
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY encoders encoders
COPY index index
COPY streams streams
RUN pip install --no-cache-dir '.[cpu]'
ENV HF_HUB_OFFLINE=1
EXPOSE 6066
CMD ["interest-stream", "worker"]
