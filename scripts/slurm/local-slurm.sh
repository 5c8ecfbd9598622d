#!/usr/bin/env bash
# A real single-node SLURM on this machine, for testing the workflow's SLURM profile.
#
#   scripts/slurm/local-slurm.sh start    # install (apt) if needed, start all daemons
#   eval "$(scripts/slurm/local-slurm.sh env)"   # SLURM_CONF for sbatch/sinfo/sacct/snakemake
#   scripts/slurm/local-slurm.sh status
#   scripts/slurm/local-slurm.sh stop     # cancel jobs, stop all daemons, delete the state
#
# Debian/Ubuntu, root, no systemd needed: munged, MariaDB, slurmdbd, slurmctld and slurmd
# are started directly. CPU-only node (all cores, 80% of available memory), one partition
# `main`, accounting through slurmdbd on a private MariaDB so that `sacct` works.
# Every file it writes (configs, keys, database, spool, logs, pid files) lives in
# $LOCAL_SLURM_DIR (default /tmp/spattack-slurm); ports are non-default so that it does not
# collide with a SLURM or MySQL already on the machine. Outside it: the apt packages (and
# their system users), and the link /etc/slurm/slurm.conf -> $LOCAL_SLURM_DIR/etc/slurm.conf
# while the cluster is up. `start` is idempotent (starts what is not running); `stop`
# stops daemons by their pid files only, never by process name, and removes the folder
# (LOCAL_SLURM_KEEP=1 keeps it). LOCAL_SLURM_FAKE_GPUS=N declares N device-less GPUs.
set -euo pipefail

DIR=$(realpath -m "${LOCAL_SLURM_DIR:-/tmp/spattack-slurm}")
CLUSTER=${LOCAL_SLURM_CLUSTER:-spattack}
CTLD_PORT=${LOCAL_SLURM_CTLD_PORT:-16817}
SLURMD_PORT=${LOCAL_SLURM_SLURMD_PORT:-16818}
DBD_PORT=${LOCAL_SLURM_DBD_PORT:-16819}
MYSQL_PORT=${LOCAL_SLURM_MYSQL_PORT:-13306}
# Declare this many GPUs on the node as a device-less generic resource (gres), so that
# GPU placement (--gpus/--gres) can be tested on a CPU-only machine; 0 = none.
FAKE_GPUS=${LOCAL_SLURM_FAKE_GPUS:-0}
PACKAGES=(slurm-wlm munge mariadb-server slurmdbd)
NODE=$(hostname -s)
CONF=$DIR/etc/slurm.conf
# The clients find the config at the standard path: Snakemake's job step drops SLURM_CONF
# from the environment of the srun it starts inside each job, so SLURM_CONF alone is not
# enough. `start` links it to $CONF (refusing to replace a real config), `stop` unlinks it.
SYS_CONF=/etc/slurm/slurm.conf

log() { echo "[local-slurm] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- pid-file helpers -------------------------------------------------------------------
pid_of() {  # pid_of PIDFILE -> prints pid if that process is alive
    local f=$1 pid
    [[ -s $f ]] || return 1
    pid=$(tr -dc '0-9' <"$f")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

wait_gone() {  # wait_gone PID SECONDS
    local pid=$1 n=$(($2 * 10))
    while kill -0 "$pid" 2>/dev/null && ((n-- > 0)); do sleep 0.1; done
    ! kill -0 "$pid" 2>/dev/null
}

stop_pidfile() {  # stop_pidfile NAME PIDFILE: TERM, wait, then KILL that one pid
    local name=$1 f=$2 pid
    pid=$(pid_of "$f") || return 0
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 30; then
        log "$name did not stop in 30 s; killing pid $pid"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || true
    fi
    rm -f "$f"
}

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
    local secs=$1 what=$2; shift 2
    local end=$((SECONDS + secs))
    while ((SECONDS < end)); do
        if timeout 10 "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    die "timed out after ${secs}s waiting for $what"
}

# --- install ----------------------------------------------------------------------------
install_packages() {
    local missing=()
    command -v slurmctld >/dev/null || missing+=(slurm-wlm)
    command -v slurmdbd >/dev/null || missing+=(slurmdbd)
    command -v munged >/dev/null || missing+=(munge)
    command -v mariadb-install-db >/dev/null || command -v mysql_install_db >/dev/null || missing+=(mariadb-server)
    ((${#missing[@]} == 0)) && return 0
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    log "installing ${PACKAGES[*]} with apt-get"
    # Keep the packages' init scripts from starting system-wide daemons during install.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
    fi
    local rc=0
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"; } >"$DIR/apt.log" 2>&1 || rc=$?
    ((made_policy)) && rm -f "$policy"
    ((rc == 0)) || { tail -n 30 "$DIR/apt.log" >&2; die "apt-get install failed (rc $rc); see $DIR/apt.log"; }
}

# --- configuration ----------------------------------------------------------------------
write_configs() {
    mkdir -p "$DIR"/{etc,munge,munge-run,mysql-run,log,run,ctld-state,slurmd-spool}
    chmod 755 "$DIR"
    # munge: private key and socket, owned by the munge user
    if [[ ! -s $DIR/munge/munge.key ]]; then
        dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    fi
    chown -R munge:munge "$DIR/munge" "$DIR/munge-run"
    chmod 700 "$DIR/munge"
    chmod 755 "$DIR/munge-run"  # the socket must be reachable by every user
    chmod 400 "$DIR/munge/munge.key"
    chown mysql:mysql "$DIR/mysql-run"

    local cpu_line mem_kb mem_mb
    # topology as slurmd sees it (CPUs, sockets, cores, threads), memory set below
    cpu_line=$(slurmd -C 2>/dev/null | head -n1 | tr ' ' '\n' | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ')
    [[ -n $cpu_line ]] || cpu_line="CPUs=$(nproc)"
    mem_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
    mem_mb=$((mem_kb * 8 / 10 / 1024))
    ((mem_mb >= 1024)) || mem_mb=1024

    local auth="AuthInfo=socket=$DIR/munge-run/munge.socket" gres="" gres_types=""
    if ((FAKE_GPUS > 0)); then
        gres="Gres=gpu:$FAKE_GPUS "
        gres_types=$'GresTypes=gpu\nAccountingStorageTRES=gres/gpu'
        # a gpu gres needs device files; character devices that every machine has stand in
        local devs=(/dev/null /dev/zero /dev/full /dev/urandom)
        ((FAKE_GPUS <= ${#devs[@]})) || die "LOCAL_SLURM_FAKE_GPUS must be at most ${#devs[@]}"
        local files
        files=$(IFS=,; echo "${devs[*]:0:FAKE_GPUS}")
        echo "NodeName=$NODE Name=gpu File=$files" >"$DIR/etc/gres.conf"
    else
        rm -f "$DIR/etc/gres.conf"
    fi
    cat >"$CONF" <<EOF
# Written by scripts/slurm/local-slurm.sh: single-node test cluster, no cgroups/systemd.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
$auth
CredType=cred/munge
MpiDefault=none
# pgid, not linuxproc: on scancel a job's processes that were re-parented to init (the
# job's Snakemake, once its shell is gone) are still killed; cgroup needs systemd/cgroupfs
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
# with slurmdbd, AccountingStoragePass names the munge socket for the dbd connection
AccountingStoragePass=$DIR/munge-run/munge.socket
AccountingStoreFlags=job_comment
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
StateSaveLocation=$DIR/ctld-state
SlurmdSpoolDir=$DIR/slurmd-spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
MinJobAge=300
$gres_types
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE ${cpu_line}${gres}RealMemory=$mem_mb State=UNKNOWN
PartitionName=main Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

    local pass
    if [[ -s $DIR/etc/slurmdbd.conf ]]; then
        pass=$(sed -n 's/^StoragePass=//p' "$DIR/etc/slurmdbd.conf")
    else
        pass=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    fi
    cat >"$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
$auth
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MYSQL_PORT
StorageUser=slurm
StoragePass=$pass
StorageLoc=slurm_acct_db
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/run/slurmdbd.pid
EOF
    chmod 600 "$DIR/etc/slurmdbd.conf"
}

# --- daemons ----------------------------------------------------------------------------
MYSQL=(mariadb --no-defaults --user=root --socket="$DIR/mysql-run/mysqld.sock")

start_munged() {
    pid_of "$DIR/munge-run/munged.pid" >/dev/null && return 0
    log "starting munged"
    rm -f "$DIR/munge-run/munge.socket"*
    runuser -u munge -- munged \
        --key-file="$DIR/munge/munge.key" --socket="$DIR/munge-run/munge.socket" \
        --pid-file="$DIR/munge-run/munged.pid" --log-file="$DIR/munge/munged.log" \
        --seed-file="$DIR/munge/munged.seed" </dev/null >/dev/null 2>&1
    wait_for 20 munged bash -c "munge -n --socket='$DIR/munge-run/munge.socket' | unmunge --socket='$DIR/munge-run/munge.socket'"
}

start_mysqld() {
    pid_of "$DIR/mysql-run/mysqld.pid" >/dev/null && return 0
    if [[ ! -d $DIR/mysql/mysql ]]; then
        log "initialising MariaDB in $DIR/mysql"
        mkdir -p "$DIR/mysql" && chown mysql:mysql "$DIR/mysql"
        local install_db
        install_db=$(command -v mariadb-install-db || command -v mysql_install_db)
        "$install_db" --no-defaults --user=mysql --datadir="$DIR/mysql" --skip-test-db \
            --auth-root-authentication-method=socket >"$DIR/log/mysql-install.log" 2>&1 \
            || { tail -n 20 "$DIR/log/mysql-install.log" >&2; die "mariadb-install-db failed"; }
    fi
    log "starting MariaDB on 127.0.0.1:$MYSQL_PORT"
    local mysqld
    mysqld=$(command -v mariadbd || command -v mysqld || echo /usr/sbin/mariadbd)
    setsid "$mysqld" --no-defaults --user=mysql --datadir="$DIR/mysql" \
        --socket="$DIR/mysql-run/mysqld.sock" --pid-file="$DIR/mysql-run/mysqld.pid" \
        --port="$MYSQL_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
        --log-error="$DIR/log/mysqld.err" --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 \
        </dev/null >>"$DIR/log/mysqld.out" 2>&1 &
    wait_for 60 "MariaDB (see $DIR/log/mysqld.err)" "${MYSQL[@]}" -e "SELECT 1"
    local pass
    pass=$(sed -n 's/^StoragePass=//p' "$DIR/etc/slurmdbd.conf")
    "${MYSQL[@]}" <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$pass';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$pass';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF
}

start_slurmdbd() {
    if ! pid_of "$DIR/run/slurmdbd.pid" >/dev/null; then
        log "starting slurmdbd on port $DBD_PORT"
        slurmdbd </dev/null >>"$DIR/log/slurmdbd.out" 2>&1
    fi
    wait_for 60 "slurmdbd (see $DIR/log/slurmdbd.log)" sacctmgr -n show cluster
    if [[ -z $(sacctmgr -n -P show cluster "$CLUSTER" format=cluster 2>/dev/null) ]]; then
        sacctmgr -i add cluster "$CLUSTER" >/dev/null
    fi
}

start_slurm() {
    if ! pid_of "$DIR/run/slurmctld.pid" >/dev/null; then
        log "starting slurmctld on port $CTLD_PORT"
        slurmctld </dev/null >>"$DIR/log/slurmctld.out" 2>&1
    fi
    wait_for 60 "slurmctld (see $DIR/log/slurmctld.log)" scontrol ping
    if ! pid_of "$DIR/run/slurmd.pid" >/dev/null; then
        log "starting slurmd on $NODE"
        slurmd </dev/null >>"$DIR/log/slurmd.out" 2>&1
    fi
    local state
    for ((i = 0; i < 120; i++)); do
        state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n1)
        case $state in
            idle* | mixed* | allocated*) log "node $NODE is $state"; return 0 ;;
            down* | drain* | fail*) scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
            inval*) break ;;
        esac
        sleep 0.5
    done
    scontrol show node "$NODE" 2>&1 | grep -E 'State=|Reason=' >&2 || true
    die "node $NODE is not up (state '${state:-?}'; see $DIR/log/slurmd.log and slurmctld.log)"
}

cmd_start() {
    [[ $(id -u) == 0 ]] || die "must run as root (installs packages, starts daemons as munge/mysql)"
    mkdir -p "$DIR"
    install_packages
    export SLURM_CONF=$CONF
    write_configs_if_needed
    link_conf
    start_munged
    start_mysqld
    start_slurmdbd
    start_slurm
    log "up: export SLURM_CONF=$CONF"
}

write_configs_if_needed() {
    # rewrite only while nothing runs (a running cluster keeps its config)
    if pid_of "$DIR/run/slurmctld.pid" >/dev/null && [[ -s $CONF ]]; then return 0; fi
    write_configs
}

link_conf() {
    if [[ -L $SYS_CONF && $(readlink "$SYS_CONF") == "$CONF" ]]; then return 0; fi
    # a dangling link left by a test cluster that was not stopped (its folder is gone)
    if [[ -L $SYS_CONF && ! -e $SYS_CONF && $(readlink "$SYS_CONF") == */etc/slurm.conf ]]; then
        log "replacing dangling $SYS_CONF -> $(readlink "$SYS_CONF")"
        rm -f "$SYS_CONF"
    fi
    if [[ -e $SYS_CONF || -L $SYS_CONF ]]; then
        die "$SYS_CONF exists and is not this test cluster's; not replacing it"
    fi
    mkdir -p "$(dirname "$SYS_CONF")"
    ln -s "$CONF" "$SYS_CONF"
}

unlink_conf() {
    if [[ -L $SYS_CONF && $(readlink "$SYS_CONF") == "$CONF" ]]; then rm -f "$SYS_CONF"; fi
}

cmd_stop() {
    export SLURM_CONF=$CONF
    local pid p shutdown=0
    if [[ -s $CONF ]] && pid_of "$DIR/run/slurmctld.pid" >/dev/null; then
        local jobs=()
        mapfile -t jobs < <(squeue -h -o %i 2>/dev/null || true)
        if ((${#jobs[@]} > 0)); then
            log "cancelling jobs: ${jobs[*]}"
            scancel "${jobs[@]}" 2>/dev/null || true
            for ((i = 0; i < 30; i++)); do
                [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
                sleep 0.5
            done
        fi
        log "scontrol shutdown"
        scontrol shutdown >/dev/null 2>&1 && shutdown=1
    fi
    for p in slurmd slurmctld; do
        # after `scontrol shutdown` both exit by themselves; else (or if they hang) TERM by pid
        if pid=$(pid_of "$DIR/run/$p.pid") && ! { ((shutdown)) && wait_gone "$pid" 30; }; then
            stop_pidfile "$p" "$DIR/run/$p.pid"
        fi
    done
    stop_pidfile slurmdbd "$DIR/run/slurmdbd.pid"
    stop_pidfile mysqld "$DIR/mysql-run/mysqld.pid"
    stop_pidfile munged "$DIR/munge-run/munged.pid"
    unlink_conf
    if [[ ${LOCAL_SLURM_KEEP:-0} != 1 && -d $DIR ]]; then
        log "removing $DIR"
        rm -rf "$DIR"
    fi
}

cmd_status() {
    export SLURM_CONF=$CONF
    local name f pid rc=0
    for name in munged:munge-run/munged.pid mysqld:mysql-run/mysqld.pid slurmdbd:run/slurmdbd.pid \
        slurmctld:run/slurmctld.pid slurmd:run/slurmd.pid; do
        f=$DIR/${name#*:}
        if pid=$(pid_of "$f"); then echo "${name%%:*}: running (pid $pid)"; else echo "${name%%:*}: stopped"; rc=1; fi
    done
    ((rc == 0)) && sinfo
    return $rc
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop; cmd_start ;;
    status) cmd_status ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *) echo "usage: $0 start|stop|restart|status|env   (state in \$LOCAL_SLURM_DIR, default /tmp/spattack-slurm)" >&2; exit 2 ;;
esac
