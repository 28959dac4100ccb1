# syntax=docker/dockerfile:1
# podfleet's worker / executor image: `podfleet worker` by default; the same image runs
# `podfleet sim`, `podfleet db upgrade`, `podfleet submit` and (built with EXTRAS=postgres,fast,loadtest) locust.
#
#   docker build -t podfleet:dev .
#   docker build -t podfleet:loadtest --build-arg EXTRAS=postgres,fast,loadtest .
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ARG EXTRAS="postgres,fast"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Every part (core/, monitoring/, executor/, workers/, simulator/, local/) is a project of its
# own; the root project names them all. requirements/lock.txt: the versions CI tested
# (scripts/lock.sh), as constraints.
COPY . .
RUN pip wheel --wheel-dir /wheels -c requirements/lock.txt \
        ./core ./monitoring ./executor ./workers ./simulator ./local ".${EXTRAS:+[$EXTRAS]}"

FROM python:${PYTHON_VERSION}-slim
ARG EXTRAS="postgres,fast"
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PODFLEET_METRICS_PORT=9464 \
    PODFLEET_METRICS_DIR=/run/podfleet/metrics
RUN groupadd --system --gid 10001 podfleet \
    && useradd --system --uid 10001 --gid podfleet --create-home --home-dir /home/podfleet \
       --shell /usr/sbin/nologin podfleet \
    && mkdir -p /run/podfleet/metrics /var/lib/podfleet \
    && chown -R podfleet:podfleet /run/podfleet /var/lib/podfleet
COPY --from=build /wheels /wheels
# The load test's locustfile ships in podfleet-local's wheel; a fixed path to it for
# docker-compose.sim.yml's loadgen service (`locust -f /opt/podfleet/locustfile.py`).
RUN pip install --no-index --find-links /wheels "podfleet${EXTRAS:+[$EXTRAS]}" \
    && rm -rf /wheels \
    && mkdir -p /opt/podfleet \
    && ln -s "$(python -m podfleet.local.loadtest)" /opt/podfleet/locustfile.py
USER 10001:10001
WORKDIR /var/lib/podfleet
# 9464: the per-host /metrics endpoint of `podfleet worker` (PODFLEET_METRICS_PORT).
EXPOSE 9464
ENTRYPOINT ["podfleet"]
CMD ["worker"]
