# The agent's files outside its venv, as every box carries them: the unit and its drop-ins, the console units,
# sysusers, tmpfiles and the docs the units' Documentation= names. Sourced by image/build.sh (the image tree)
# and packaging/deb/build.sh (the .deb), so both lay out the same box.
#   install_agent_files REPO ROOT [UNIT]    UNIT: the main unit file (default REPO/systemd/edge-agent.service)
install_agent_files() {
    local repo=$1 root=$2 unit=${3:-"$1/systemd/edge-agent.service"} dropin d
    local units="$root/usr/lib/systemd/system" doc="$root/usr/share/doc/edge-agent"
    install -D -m 0644 "$unit" "$units/edge-agent.service"
    for dropin in "$repo"/systemd/edge-agent.service.d/*.conf; do
        install -D -m 0644 "$dropin" "$units/edge-agent.service.d/$(basename "$dropin")"
    done
    install -m 0644 "$repo/systemd/edge-agent-console.service" "$repo/systemd/edge-agent-console@.service" "$units/"
    install -D -m 0644 "$repo/systemd/edge-agent.sysusers" "$root/usr/lib/sysusers.d/edge-agent.conf"
    install -D -m 0644 "$repo/systemd/edge-agent.tmpfiles" "$root/usr/lib/tmpfiles.d/edge-agent.conf"
    mkdir -p "$doc"
    for d in README.md docs image/README.md; do
        if [[ -e "$repo/$d" ]]; then cp -r "$repo/$d" "$doc/${d//\//-}"; fi
    done
}
