#!/usr/bin/env bash
# unsamv2-ray-driver COMMAND...: run COMMAND as a Ray driver on a node of the cluster at $RAY_ADDRESS.
#
# Ray Data needs its driver on a Ray node (a Ray Client connection, ray://, is not enough), so a
# pod outside the cluster (a Prefect flow-run Job of the Kubernetes work pool) first joins the
# cluster as a node that offers no CPUs and no GPUs — no work is scheduled on it — then runs
# COMMAND, whose ray.init("auto") connects through this node, and leaves the cluster when
# COMMAND ends. Token auth: RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) come
# from the pod's environment. Exit status: COMMAND's. Meant for containers: the final `ray stop`
# stops every Ray process of the container.
set -uo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: unsamv2-ray-driver COMMAND [ARGS...]" >&2
    exit 2
fi
case "${RAY_ADDRESS:-}" in
    "" | auto | local | ray://*)
        echo "unsamv2-ray-driver: set RAY_ADDRESS to the cluster's GCS address (host:6379), not '${RAY_ADDRESS:-}'." >&2
        exit 2 ;;
esac

ray start --address="$RAY_ADDRESS" --num-cpus=0 --num-gpus=0 \
    --object-store-memory="${UNSAMV2_DRIVER_OBJECT_STORE_BYTES:-1000000000}" --disable-usage-stats || {
    echo "unsamv2-ray-driver: could not join the Ray cluster at $RAY_ADDRESS." >&2
    exit 3
}

"$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
wait "$child"
status=$?
if kill -0 "$child" 2>/dev/null; then  # interrupted by a signal: wait for the command to finish
    wait "$child"
    status=$?
fi
ray stop >/dev/null 2>&1 || true
exit "$status"
