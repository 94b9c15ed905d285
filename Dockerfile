# The Airflow image for docker-compose.yaml: Apache Airflow's reference image with this repository's
# provider (airflow-provider-mantrix, and the `mantrix-fake-stripe` console script) installed.
#
# It extends the official image the way Airflow documents it
# (https://airflow.apache.org/docs/docker-stack/build.html, "Extending the image"): stay the image's
# `airflow` user, pip-install on top, and pin "apache-airflow==${AIRFLOW_VERSION}" in the same command
# so that pip can never up- or downgrade the Airflow the image was built with.
#
#   docker compose build                     # what `docker compose up` does when the image is missing
#   docker build -t airflow-provider-mantrix:local .
#
# Tags are apache/airflow:<airflow version>-python<X.Y>; the provider is developed on Python 3.11.
ARG AIRFLOW_IMAGE_TAG=3.3.2-python3.11
FROM apache/airflow:${AIRFLOW_IMAGE_TAG}

# The reference image already runs as `airflow`; say so, so that nothing below runs as root.
USER airflow

# The repository (see .dockerignore for what stays out: virtualenvs, caches, .env, the DAGs and
# logs, which docker-compose.yaml mounts at run time). Owned by `airflow` because building the
# package writes its metadata next to the sources.
COPY --chown=airflow:root . /home/airflow/airflow-provider-mantrix

RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /home/airflow/airflow-provider-mantrix \
    && python -c "import airflow_provider_mantrix" \
    && command -v mantrix-fake-stripe
