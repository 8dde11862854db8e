#!/usr/bin/env bash
# Make every sandbox backend available for the test run: bubblewrap, a docker engine, and the
# offline-built sandbox image. Idempotent, and never fails the CI: whatever cannot be set up is
# reported here, and the tests of that backend skip with the reason.
#
#   .ci/sandbox_setup.sh          (as root; uses apt-get and starts dockerd in the background)
set -u
cd "$(dirname "$0")/.."

log() { echo "[sandbox-setup] $*"; }

need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v prlimit >/dev/null 2>&1 || need+=(util-linux)
if ((${#need[@]})); then
    log "installing ${need[*]}"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } \
        >/tmp/sandbox-setup-apt.log 2>&1; then
        log "apt-get failed (see /tmp/sandbox-setup-apt.log); continuing with what is there"
    fi
fi

if command -v docker >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
    if command -v dockerd >/dev/null 2>&1; then
        log "starting dockerd (log: /tmp/dockerd.log)"
        # its own session: a job-control kill of our process group must not take the engine along
        setsid nohup dockerd >/tmp/dockerd.log 2>&1 </dev/null &
        for _ in $(seq 1 60); do
            docker info >/dev/null 2>&1 && break
            sleep 1
        done
    fi
fi

if docker info >/dev/null 2>&1; then
    log "docker engine up: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
    if ! sandbox/build_image.sh >/tmp/sandbox-setup-image.log 2>&1; then
        log "image build failed (see /tmp/sandbox-setup-image.log); docker tests will skip"
    else
        tail -n 1 /tmp/sandbox-setup-image.log | sed 's/^/[sandbox-setup] /'
    fi
else
    log "no docker engine (see /tmp/dockerd.log); docker tests will skip"
fi

if command -v bwrap >/dev/null 2>&1; then
    log "bubblewrap: $(bwrap --version)"
else
    log "bubblewrap missing; bwrap tests will skip"
fi
exit 0
