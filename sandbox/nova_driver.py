"""nova.virt.spark_sandbox: a Nova compute driver whose servers are real Linux hosts.

Nova loads compute drivers only from the ``nova.virt`` package, so ``sandbox/up`` copies
this file to ``nova/virt/spark_sandbox.py`` in the sandbox virtualenv and sets
``compute_driver = spark_sandbox.SandboxDriver``.

A server is a "namespace host":
  * network: its own network namespace with one ``ethN`` per Neutron port (the port's MAC
    and fixed IP), a veth into a per-network Linux bridge that lives in the switch namespace
    ``<prefix>-sw``; the root namespace has a leg on that bridge holding the subnet's
    gateway address (so clients on the machine reach fixed IPs, and the hosts' default
    route ends there: per-leg forwarding is off, nothing leaves the sandbox);
  * filesystem: copy-on-write overlays over the machine's /etc /var /usr, empty overlays for
    /root /home /opt /srv, private tmpfs /tmp /run, a private /dev; the machine's own
    files are never modified (its / is remounted read-only inside the host). An image with
    the property ``sandbox_rootfs=NAME`` boots on a root tree of its own instead (a bare
    Debian made by ``sandbox/build_rootfs.sh`` under ``SANDBOX_ROOTFS_DIR/NAME``): the same
    overlays over that tree, which the host enters with chroot, so it runs that tree's
    /usr, /etc and /var (its cloud-init, sshd, Python), not the machine's;
  * processes: own PID and UTS namespaces; PID 1 is ``host_init.sh``, which runs the real
    cloud-init stages from a NoCloud seed (the instance's user-data and meta-data), starts
    sshd after the network stage (as a real boot does, so user-data may still be running
    when SSH answers) and then reaps children.
Server actions: stop kills the host's processes and keeps its disk (the overlay upper
dirs); start/reboot boots it again on the same disk; delete removes everything; the
console log is the host's PID 1 output (cloud-init's output included).
Snapshots upload a tar of the host's filesystem changes to Glance; a server booted from
such an image gets them back as a read-only lower layer.
"""
import base64
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from oslo_log import log as logging

from nova.compute import power_state
from nova.image import glance
from nova.virt import fake
from nova.virt import hardware

LOG = logging.getLogger(__name__)

STATE = os.environ.get('SANDBOX_HOSTS_DIR', '/var/lib/spark-sandbox/hosts')
PREFIX = os.environ.get('SANDBOX_PREFIX', 'sbx')
SWITCH_NS = PREFIX + '-sw'
DIRS_COW = ['etc', 'var', 'usr']             # copy-on-write over the machine's dirs
DIRS_EMPTY = ['root', 'home', 'opt', 'srv']  # start empty, like a fresh VM
# every top-level folder a plain Linux root does not have is hidden in a host
_FHS = {'bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32', 'usr', 'etc', 'var', 'dev', 'proc',
        'sys', 'run', 'tmp', 'root', 'home', 'opt', 'srv', 'boot', 'media', 'mnt'}
SNAPSHOT_PROPERTY = 'sandbox_snapshot'
ROOTFS_PROPERTY = 'sandbox_rootfs'            # a base image's own root tree, by name
ROOTFS_DIR = os.environ.get('SANDBOX_ROOTFS_DIR', '/var/lib/spark-sandbox/rootfs')
# security groups are applied by sandbox/agent.py; until it has, a new host accepts only
# replies and loopback, as a real cloud's port is filtered before the server boots
ENFORCE_SG = os.environ.get('SANDBOX_SECURITY_GROUPS', 'on') != 'off'
DEFAULT_DENY = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
"""

_net_lock = threading.Lock()

CLOUD_CFG = """\
# written by the sandbox compute driver (nova.virt.spark_sandbox)
datasource_list: [NoCloud, None]
network: {config: disabled}   # eth0 is configured by the driver, as DHCP would
disable_root: false           # the keypair's key is authorised for root too
ssh_genkeytypes: [ed25519]    # one host key type: saves ~1.7 s of boot
# skipped in a namespace host, and why:
#   growpart, resizefs: would act on the machine's real disk
#   ntp, timezone: the clock belongs to the machine's kernel
locale: C.UTF-8               # the machine has no generated locales besides C.UTF-8
growpart: {mode: 'off'}
resize_rootfs: false
output: {all: '| tee -a /var/log/cloud-init-output.log'}
"""

HOST_INIT = r"""#!/bin/bash
# PID 1 of a sandbox host (own pid/mount/uts namespaces inside the host's net namespace).
# Usage: host_init.sh HOSTDIR HOSTNAME [ROOTFS]
#   ROOTFS: the image's own root tree; the host's / is then NR=HOSTDIR/root, entered with
#   chroot once everything is mounted. Without it, NR is the machine's own / (read-only).
set -u
HD=$1; H=$2; RFS=${3:-}
say() { echo "[sandbox-init $(date +%s.%N)] $*"; }
say "boot pid=$$ host=$H${RFS:+ rootfs=$RFS}"
mount --make-rprivate /
mount --bind "$HD" "$HD"                 # keeps the upper dirs writable once / is ro
mount -o remount,bind,ro /               # the machine's / itself: read-only here
NR=
if [ -n "$RFS" ]; then
  NR=$HD/root; mkdir -p "$NR"
  mount --bind "$RFS" "$NR" && mount -o remount,bind,ro "$NR" || exit 1   # shared: never written
fi
for d in @COW@; do
  low=$NR/$d; [ -d "$HD/lower/$d" ] && low="$HD/lower/$d:$NR/$d"
  mount -t overlay "sbx-$d" -o "lowerdir=$low,upperdir=$HD/upper/$d,workdir=$HD/work/$d" "$NR/$d" || exit 1
done
for d in @EMPTY@; do
  low=$HD/empty; [ -d "$HD/lower/$d" ] && low="$HD/lower/$d:$HD/empty"
  mount -t overlay "sbx-$d" -o "lowerdir=$low,upperdir=$HD/upper/$d,workdir=$HD/work/$d" "$NR/$d" || exit 1
done
if [ -n "$NR" ]; then
  mount -t proc sbx-proc "$NR/proc" || exit 1
  mount -t sysfs -o ro sbx-sys "$NR/sys" 2>/dev/null || mount --rbind -o ro /sys "$NR/sys"
fi
D=$HD/dev; mkdir -p "$D"; mount -t tmpfs -o mode=755,size=1m,nosuid sbx-dev "$D"
for n in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
  set -- $n; mknod -m 666 "$D/$1" c "$2" "$3"
done
mkdir "$D/pts" "$D/shm" && ln -s pts/ptmx "$D/ptmx" && ln -s /proc/self/fd "$D/fd"
ln -s /proc/self/fd/0 "$D/stdin"; ln -s /proc/self/fd/1 "$D/stdout"; ln -s /proc/self/fd/2 "$D/stderr"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 sbx-devpts "$D/pts"
mount -t tmpfs -o mode=1777,size=64m,nosuid,nodev sbx-shm "$D/shm"
mount -n --move "$D" "$NR/dev" || exit 1
mount -t tmpfs -o mode=1777,size=2g sbx-tmp "$NR/tmp"
mount -t tmpfs -o mode=755,size=64m sbx-run "$NR/run"
mkdir -p "$NR/run/sshd" "$NR/run/lock" && chmod 755 "$NR/run/sshd"
hostname "$H"
# the boot itself (below the marker in this file) runs from the host's own /run
sed '1,/^# ---- boot ----$/d' "$0" > "$NR/run/sandbox-boot.sh"
if [ -n "$NR" ]; then
  exec chroot "$NR" /bin/bash /run/sandbox-boot.sh
fi
# last: hide every top-level folder a plain Linux root does not have (the host's own
# state dir lives in one of them; everything above already holds what it needs)
for d in @HIDE@; do [ -d "/$d" ] && mount -t tmpfs -o ro,size=4k,mode=755 sbx-hide "/$d"; done
exec /bin/bash /run/sandbox-boot.sh
# ---- boot ----
say() { echo "[sandbox-init $(date +%s.%N)] $*"; }
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root
cd /
stage() { say "cloud-init $*"; /usr/bin/cloud-init "$@"; say "cloud-init $* rc=$?"; }
stage init --local
stage init
say "start sshd"
/usr/sbin/sshd -D -e -o PidFile=/run/sshd.pid &
SSHD=$!
stage modules --mode config
stage modules --mode final
say "boot finished"
while kill -0 "$SSHD" 2>/dev/null; do wait "$SSHD"; done
say "sshd exited; host going down"
"""


def _run(*cmd, check=True):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError('%s failed (%s): %s' % (' '.join(cmd), proc.returncode,
                                                   proc.stderr.strip()))
    return proc


def _link_exists(name, netns=None):
    cmd = ['ip'] + (['-n', netns] if netns else []) + ['link', 'show', name]
    return _run(*cmd, check=False).returncode == 0


def _hide_dirs():
    return sorted(d for d in os.listdir('/') if d not in _FHS and os.path.isdir('/' + d)
                  and not os.path.islink('/' + d))


def ensure_network(net_id, cidr, gateway):
    """Bridge for one Neutron network in the switch namespace, plus the root leg.

    Idempotent; also called by ``sandbox/up`` for the ``private`` network so the artifact
    mirror can listen on the gateway address before any server exists.
    """
    br, leg = 'br-' + net_id[:8], PREFIX + 'r-' + net_id[:8]
    with _net_lock:
        if not os.path.exists('/run/netns/' + SWITCH_NS):
            _run('ip', 'netns', 'add', SWITCH_NS)
            _run('ip', '-n', SWITCH_NS, 'link', 'set', 'lo', 'up')
        if not _link_exists(br, SWITCH_NS):
            _run('ip', '-n', SWITCH_NS, 'link', 'add', br, 'type', 'bridge')
            _run('ip', '-n', SWITCH_NS, 'link', 'set', br, 'up')
        if not _link_exists(leg):
            _run('ip', 'link', 'add', leg, 'type', 'veth', 'peer', 'name', leg + 'b')
            _run('ip', 'link', 'set', leg + 'b', 'netns', SWITCH_NS)
            _run('ip', '-n', SWITCH_NS, 'link', 'set', leg + 'b', 'master', br, 'up')
            pfx = ipaddress.ip_network(cidr).prefixlen
            _run('ip', 'addr', 'add', '%s/%d' % (gateway, pfx), 'dev', leg)
            _run('ip', 'link', 'set', leg, 'up')
            # the machine never routes anything coming from the hosts
            with open('/proc/sys/net/ipv4/conf/%s/forwarding' % leg, 'w') as f:
                f.write('0')
    return br


def _vifs(network_info):
    out = []
    for vif in network_info or []:
        for sub in vif['network']['subnets']:
            if sub['version'] != 4 or not sub['ips']:
                continue
            gw = (sub.get('gateway') or {}).get('address') or \
                str(next(ipaddress.ip_network(sub['cidr']).hosts()))
            out.append(dict(net_id=vif['network']['id'], mac=vif['address'],
                            cidr=sub['cidr'], ip=sub['ips'][0]['address'], gw=gw))
            break
    return out


def _rootfs(props):
    """The root tree an image's property names (a name, never a path: users may set
    properties on their own images), or None for the machine's own root."""
    name = props.get(ROOTFS_PROPERTY)
    if not name:
        return None
    if not isinstance(name, str) or not name.replace('-', '').replace('.', '').isalnum() \
            or name.startswith('.') \
            or not os.path.isfile(os.path.join(ROOTFS_DIR, name, '.built')):
        raise RuntimeError('image property %s=%r names no root tree in %s'
                           % (ROOTFS_PROPERTY, name, ROOTFS_DIR))
    return name


def host_dir(uuid):
    return os.path.join(STATE, uuid)


def netns_name(uuid):
    return '%s-%s' % (PREFIX, uuid[:8])


class SandboxDriver(fake.FakeDriver):
    """FakeDriver bookkeeping (resources, states) + a real host per server."""

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi, read_only)
        self._procs = {}

    # ------------------------------------------------------------------ boot
    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, allocations, network_info=None,
              block_device_info=None, power_on=True, accel_info=None):
        t0 = time.time()
        super().spawn(context, instance, image_meta, injected_files, admin_password,
                      allocations, network_info, block_device_info, power_on, accel_info)
        uuid = instance.uuid
        hd = host_dir(uuid)
        shutil.rmtree(hd, ignore_errors=True)
        for d in DIRS_COW + DIRS_EMPTY:
            os.makedirs(os.path.join(hd, 'upper', d))
            os.makedirs(os.path.join(hd, 'work', d))
        os.makedirs(os.path.join(hd, 'empty'))
        props = self._image_properties(context, instance)
        rootfs = _rootfs(props)
        if props.get(SNAPSHOT_PROPERTY) == 'true':
            self._restore_snapshot(context, instance, hd)
        hostname = instance.hostname or netns_name(uuid)
        vifs = _vifs(network_info)
        self._write_seed(instance, hd, hostname, vifs)
        with open(os.path.join(hd, 'host_init.sh'), 'w') as f:
            f.write(HOST_INIT.replace('@COW@', ' '.join(DIRS_COW))
                    .replace('@EMPTY@', ' '.join(DIRS_EMPTY))
                    .replace('@HIDE@', ' '.join(_hide_dirs())))
        with open(os.path.join(hd, 'host.json'), 'w') as f:
            json.dump({'hostname': hostname, 'vifs': vifs, 'netns': netns_name(uuid),
                       'rootfs': rootfs}, f)
        self._plug(uuid, vifs)
        if power_on:
            self._boot(uuid)
        LOG.info('sandbox host %s (%s) up in %.2fs, ips %s', netns_name(uuid), hostname,
                 time.time() - t0, [v['ip'] for v in vifs], instance=instance)

    def _write_seed(self, instance, hd, hostname, vifs):
        up = os.path.join(hd, 'upper')
        seed = os.path.join(up, 'var/lib/cloud/seed/nocloud')
        os.makedirs(seed)
        key = (instance.key_data or '').strip()
        meta = 'instance-id: %s\nlocal-hostname: %s\n' % (instance.uuid, hostname)
        if key:
            meta += 'public-keys:\n  - "%s"\n' % key
        with open(os.path.join(seed, 'meta-data'), 'w') as f:
            f.write(meta)
        user_data = base64.b64decode(instance.user_data) if instance.user_data else b''
        with open(os.path.join(seed, 'user-data'), 'wb') as f:
            f.write(user_data)
        cfgd = os.path.join(up, 'etc/cloud/cloud.cfg.d')
        os.makedirs(cfgd, exist_ok=True)
        with open(os.path.join(cfgd, '99_spark_sandbox.cfg'), 'w') as f:
            f.write(CLOUD_CFG)
        # what DHCP/DNS gives on a real cloud: the host's own name resolves to its address
        hosts = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n'
        if vifs:
            hosts += '%s\t%s\n' % (vifs[0]['ip'], hostname)
        with open(os.path.join(up, 'etc/hosts'), 'w') as f:
            f.write(hosts)
        for fn in ('.bashrc', '.profile'):
            if os.path.exists('/etc/skel/' + fn):
                shutil.copy('/etc/skel/' + fn, os.path.join(up, 'root', fn))

    def _plug(self, uuid, vifs):
        ns = netns_name(uuid)
        if os.path.exists('/run/netns/' + ns):
            _run('ip', 'netns', 'del', ns)
        _run('ip', 'netns', 'add', ns)
        _run('ip', '-n', ns, 'link', 'set', 'lo', 'up')
        if ENFORCE_SG:
            subprocess.run(['ip', 'netns', 'exec', ns, 'iptables-restore'], input=DEFAULT_DENY,
                           text=True, check=True, capture_output=True)
        for i, v in enumerate(vifs):
            br = ensure_network(v['net_id'], v['cidr'], v['gw'])
            a, b = '%s%s%de' % (PREFIX, uuid[:8], i), '%s%s%db' % (PREFIX, uuid[:8], i)
            dev = 'eth%d' % i
            _run('ip', 'link', 'add', a, 'type', 'veth', 'peer', 'name', b)
            _run('ip', 'link', 'set', a, 'netns', ns)
            _run('ip', '-n', ns, 'link', 'set', a, 'name', dev)
            _run('ip', '-n', ns, 'link', 'set', dev, 'address', v['mac'])
            _run('ip', '-n', ns, 'addr', 'add', '%s/%d' % (
                v['ip'], ipaddress.ip_network(v['cidr']).prefixlen), 'dev', dev)
            _run('ip', '-n', ns, 'link', 'set', dev, 'up')
            if i == 0:
                # replies to floating-IP traffic go back through the gateway, which is a
                # dead end (the root namespace forwards nothing from the hosts)
                _run('ip', '-n', ns, 'route', 'add', 'default', 'via', v['gw'])
            _run('ip', 'link', 'set', b, 'netns', SWITCH_NS)
            _run('ip', '-n', SWITCH_NS, 'link', 'set', b, 'master', br, 'up')
            # a reused fixed IP comes with a new MAC: drop the stale neighbour entry
            _run('ip', 'neigh', 'flush', 'to', v['ip'], check=False)

    def _boot(self, uuid):
        hd = host_dir(uuid)
        with open(os.path.join(hd, 'host.json')) as f:
            info = json.load(f)
        log = open(os.path.join(hd, 'console.log'), 'ab')
        rootfs = info.get('rootfs')
        proc = subprocess.Popen(
            ['ip', 'netns', 'exec', info['netns'], 'unshare', '--mount', '--uts', '--pid',
             '--fork', '--kill-child', '--mount-proc', 'bash', os.path.join(hd, 'host_init.sh'),
             hd, info['hostname']] + ([os.path.join(ROOTFS_DIR, rootfs)] if rootfs else []),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True)
        log.close()
        self._procs[uuid] = proc
        with open(os.path.join(hd, 'init.pid'), 'w') as f:
            f.write(str(proc.pid))

    @staticmethod
    def _image_properties(context, instance):
        if not instance.image_ref:
            return {}
        try:
            return glance.API().get(context, instance.image_ref).get('properties') or {}
        except Exception:  # noqa: BLE001 - a base image without data is fine
            return {}

    def _restore_snapshot(self, context, instance, hd):
        tarf = os.path.join(hd, 'snapshot.tar')
        glance.API().download(context, instance.image_ref, dest_path=tarf)
        os.makedirs(os.path.join(hd, 'lower'))
        _run('tar', '-C', os.path.join(hd, 'lower'), '--xattrs', '--xattrs-include=trusted.*',
             '--numeric-owner', '-xpf', tarf)
        os.unlink(tarf)

    # ------------------------------------------------------------------ power
    def _halt(self, uuid):
        """Kill the host's PID 1 (and with it its whole PID namespace); keep its disk."""
        hd = host_dir(uuid)
        try:
            with open(os.path.join(hd, 'init.pid')) as f:
                pid = int(f.read())
        except (OSError, ValueError):
            pid = None
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)   # unshare --kill-child takes the PID ns down
            except ProcessLookupError:
                pass
            proc = self._procs.pop(uuid, None)
            if proc is not None:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    LOG.warning('host init %s did not exit', pid)
            try:
                os.unlink(os.path.join(hd, 'init.pid'))
            except OSError:
                pass
        ns = netns_name(uuid)
        for _ in range(50):   # processes of the namespace may take a moment to go
            out = _run('ip', 'netns', 'pids', ns, check=False).stdout.strip()
            if not out:
                break
            time.sleep(0.1)

    def power_off(self, instance, timeout=0, retry_interval=0):
        super().power_off(instance, timeout, retry_interval)
        self._halt(instance.uuid)

    def power_on(self, context, instance, network_info,
                 block_device_info=None, accel_info=None, share_info=None):
        super().power_on(context, instance, network_info, block_device_info, accel_info,
                         share_info)
        self._halt(instance.uuid)
        self._boot(instance.uuid)

    def reboot(self, context, instance, network_info, reboot_type,
               block_device_info=None, bad_volumes_callback=None,
               accel_info=None, share_info=None):
        if instance.uuid not in self.instances:
            return super().reboot(context, instance, network_info, reboot_type,
                                  block_device_info, bad_volumes_callback, accel_info,
                                  share_info)
        self._halt(instance.uuid)
        self.instances[instance.uuid].state = power_state.RUNNING
        self._boot(instance.uuid)

    def get_info(self, instance, use_cache=True):
        info = super().get_info(instance, use_cache)
        proc = self._procs.get(instance.uuid)
        if info.state == power_state.RUNNING and proc is not None and \
                proc.poll() is not None:
            return hardware.InstanceInfo(state=power_state.SHUTDOWN)
        return info

    def get_console_output(self, context, instance):
        try:
            with open(os.path.join(host_dir(instance.uuid), 'console.log'), 'rb') as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 100 * 1024))
                return f.read()   # bytes, as the libvirt driver returns them
        except OSError:
            return b''

    # ------------------------------------------------------------------ delete
    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        self._halt(instance.uuid)
        _run('ip', 'netns', 'del', netns_name(instance.uuid), check=False)
        if destroy_disks:
            shutil.rmtree(host_dir(instance.uuid), ignore_errors=True)
        super().destroy(context, instance, network_info, block_device_info,
                        destroy_disks, destroy_secrets)

    # ------------------------------------------------------------------ snapshot
    def snapshot(self, context, instance, image_id, update_task_state):
        super().snapshot(context, instance, image_id, update_task_state)
        hd = host_dir(instance.uuid)
        api = glance.API()
        snap = api.get(context, image_id)
        with open(os.path.join(hd, 'host.json')) as f:
            rootfs = json.load(f).get('rootfs')
        with tempfile.NamedTemporaryFile(dir=hd, suffix='.tar') as tf:
            cmd = ['tar', '--xattrs', '--xattrs-include=trusted.*', '--numeric-owner',
                   '--exclude=./var/lib/cloud/seed', '-cf', tf.name]
            if os.path.isdir(os.path.join(hd, 'lower')):
                cmd += ['-C', os.path.join(hd, 'lower'), '.']   # flatten: lower, then upper
            cmd += ['-C', os.path.join(hd, 'upper')] + ['./' + d for d in DIRS_COW + DIRS_EMPTY]
            _run(*cmd)
            meta = {
                'status': 'active', 'name': snap['name'],
                'disk_format': snap.get('disk_format') or 'raw',
                'container_format': snap.get('container_format') or 'bare',
                'properties': {'image_location': 'snapshot', 'image_state': 'available',
                               'owner_id': instance.project_id, SNAPSHOT_PROPERTY: 'true'},
            }
            if rootfs:   # the layers need the tree they were made over
                meta['properties'][ROOTFS_PROPERTY] = rootfs
            with open(tf.name, 'rb') as data:
                api.update(context, image_id, meta, data=data, purge_props=False)
        LOG.info('sandbox snapshot of %s uploaded as image %s', instance.uuid, image_id,
                 instance=instance)
