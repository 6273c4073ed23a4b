"""The sandbox's dataplane agent: what Neutron's L3 agent and firewall driver would do.

Follows Neutron (its database, read-only, as Neutron's own server does for its agents; or
its API as the sandbox admin when the database is not at hand) and keeps the machine in
step with it:
  * floating IPs: one iptables NAT chain in the root namespace (``<PREFIX>-FIP``) holds a
    DNAT rule per associated floating IP, so a connection from the machine to a floating
    IP reaches the server's fixed IP; after disassociation new connections no longer do;
  * security groups: each host's own namespace gets an iptables INPUT policy of DROP plus
    the ingress rules of its port's security groups (``remote_ip_prefix`` and
    ``remote_group_id`` both honoured; egress is left open, as in Neutron's default group);
    a port with port security disabled is not filtered.
Only the NAT chain above and the hosts' own namespaces are ever touched.

Cheap per round, so it can poll often (``SANDBOX_AGENT_INTERVAL``, default 0.2 s): a few
indexed SELECTs (milliseconds, where three API listings took seconds under a 64-server
boot); the NAT chain is rewritten by one atomic ``iptables-restore --noflush`` only when
it changed (and checked against the kernel every ``SANDBOX_AGENT_RESYNC`` s); a host's
rules are restored only when its own text changed, a new host's first, several at once,
and a membership change reaching many hosts is spread over rounds so it never holds a
new host up.

Run by ``sandbox/up`` with the sandbox virtualenv; stopped by ``sandbox/down`` by PID.
"""
import configparser
import hashlib
import os
import subprocess
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

PREFIX = os.environ.get('SANDBOX_PREFIX', 'sbx')
CHAIN = PREFIX.upper() + '-FIP'
INTERVAL = float(os.environ.get('SANDBOX_AGENT_INTERVAL', '0.2'))
RESYNC = float(os.environ.get('SANDBOX_AGENT_RESYNC', '10'))
ENFORCE_SG = os.environ.get('SANDBOX_SECURITY_GROUPS', 'on') != 'off'
WORKERS = 4          # iptables-restore runs at once (they are mostly process start-up)
BUDGET = 0.3         # s per round for hosts that are not new (remote-group updates)


def ipt_nat(*args, check=True):
    return subprocess.run(['iptables', '-w', '-t', 'nat', *args], capture_output=True,
                          text=True, check=check)


# ---------------------------------------------------------------- floating IPs
def ensure_chain():
    if ipt_nat('-S', CHAIN, check=False).returncode != 0:
        ipt_nat('-N', CHAIN)
    if ipt_nat('-C', 'OUTPUT', '-j', CHAIN, check=False).returncode != 0:
        ipt_nat('-I', 'OUTPUT', '-j', CHAIN)


def current_nat():
    rules = {}
    for line in ipt_nat('-S', CHAIN).stdout.splitlines():
        parts = line.split()
        if parts[:2] != ['-A', CHAIN] or '-d' not in parts:
            continue
        rules[parts[parts.index('-d') + 1].split('/')[0]] = \
            parts[parts.index('--to-destination') + 1]
    return rules


_nat = {'want': None, 'checked': 0.0}


def sync_floating_ips(fips):
    """One atomic rewrite of the NAT chain when Neutron's associations changed (or the
    kernel's chain drifted from them, checked every RESYNC seconds)."""
    want = {ip.floating_ip_address: ip.fixed_ip_address for ip in fips
            if ip.port_id and ip.fixed_ip_address}
    now = time.monotonic()
    have = _nat['want']
    if have == want and now - _nat['checked'] < RESYNC:
        return
    if have == want:
        _nat['checked'] = now
        have = current_nat()
        if have == want:
            return
        print(f'[fip] {CHAIN} drifted from Neutron: rewriting it', flush=True)
    elif have is None:
        have = current_nat()
    text = ''.join(f'-A {CHAIN} -d {fip}/32 -j DNAT --to-destination {fixed}\n'
                   for fip, fixed in sorted(want.items()))
    subprocess.run(['iptables-restore', '-w', '--noflush'], check=True, capture_output=True,
                   text=True, input=f'*nat\n:{CHAIN} - [0:0]\n{text}COMMIT\n')
    _nat.update(want=want, checked=now)
    for fip, fixed in have.items():
        if want.get(fip) != fixed:
            print(f'[fip] {fip} -/-> {fixed}', flush=True)
    for fip, fixed in want.items():
        if have.get(fip) != fixed:
            print(f'[fip] {fip} ---> {fixed}', flush=True)


# ---------------------------------------------------------------- security groups
def _port_ips(port):
    return [ip['ip_address'] for ip in port.fixed_ips if ':' not in ip['ip_address']]


def ruleset(port, groups, members):
    """iptables-restore text for one host's filter table."""
    lines = ['*filter', ':INPUT DROP [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT ACCEPT [0:0]',
             '-A INPUT -i lo -j ACCEPT',
             '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
             '-A INPUT -p icmp -j ACCEPT']
    if port.is_port_security_enabled is False:
        lines[1] = ':INPUT ACCEPT [0:0]'
    for gid in sorted(port.security_group_ids or []):
        for rule in groups.get(gid, []):
            if rule.direction != 'ingress' or rule.ether_type != 'IPv4':
                continue
            sources = [rule.remote_ip_prefix] if rule.remote_ip_prefix else \
                sorted(members.get(rule.remote_group_id, [])) if rule.remote_group_id else \
                ['0.0.0.0/0']
            match = []
            if rule.protocol:
                proto = {'6': 'tcp', '17': 'udp', '1': 'icmp'}.get(str(rule.protocol),
                                                                    str(rule.protocol))
                match = ['-p', proto]
                if proto in ('tcp', 'udp') and rule.port_range_min:
                    match += ['--dport', f'{rule.port_range_min}:'
                              f'{rule.port_range_max or rule.port_range_min}']
            for src in sources:
                lines.append(' '.join(['-A INPUT', '-s', src, *match, '-j ACCEPT']))
    lines.append('COMMIT')
    return '\n'.join(lines) + '\n'


_applied = {}   # netns name -> (its inode, digest of the rules restored into it)
_pending = {}   # netns name -> when its rules were first seen out of date
# a new host is ready for its rules once the driver has plugged its NIC (it restores its
# default-deny before, which would otherwise overwrite rules restored too early)
_FIRST = 'grep -q "^ *eth0:" /proc/net/dev || exit 75; exec iptables-restore'


def _restore(ns, text, first):
    cmd = ['nsenter', '--net=/run/netns/' + ns]
    cmd += ['sh', '-c', _FIRST] if first else ['iptables-restore']
    return subprocess.run(cmd, input=text, capture_output=True, text=True)


def sync_security_groups(ports, rules):
    groups, members = {}, {}
    for rule in rules:
        groups.setdefault(rule.security_group_id, []).append(rule)
    for port in ports:
        for gid in port.security_group_ids or []:
            members.setdefault(gid, set()).update(_port_ips(port))
    todo, live = [], set()
    for port in ports:
        if not port.device_id or not (port.device_owner or '').startswith('compute:'):
            continue
        ns = f'{PREFIX}-{port.device_id[:8]}'
        try:
            inode = os.stat('/run/netns/' + ns).st_ino   # a re-plugged host: a new inode
        except OSError:
            continue
        live.add(ns)
        text = ruleset(port, groups, members)
        digest = hashlib.sha1(text.encode()).hexdigest()
        done = _applied.get(ns)
        if done == (inode, digest):
            _pending.pop(ns, None)
            continue
        first = done is None or done[0] != inode
        todo.append((not first, _pending.setdefault(ns, time.monotonic()), ns, inode, text,
                     digest))
    for ns in set(_applied) - live:
        del _applied[ns]
    for ns in set(_pending) - live:
        del _pending[ns]
    if not todo:
        return
    todo.sort()   # new hosts first, then the longest waiting
    t0, updated = time.monotonic(), 0
    with ThreadPoolExecutor(WORKERS) as pool:
        for i in range(0, len(todo), WORKERS):
            batch = todo[i:i + WORKERS]
            if batch[0][0] and updated and time.monotonic() - t0 > BUDGET:
                break   # updates of older hosts: at least one batch a round, the rest next
            for (old, _, ns, inode, text, digest), proc in zip(batch, pool.map(
                    lambda t: _restore(t[2], t[4], not t[0]), batch)):
                updated += old
                if proc.returncode == 0:
                    _applied[ns] = (inode, digest)
                    _pending.pop(ns, None)
                    if not old:
                        print(f'[sg] {ns}: {text.count("-A INPUT -s")} ingress rule(s)',
                              flush=True)
                elif proc.returncode != 75 and os.path.exists('/run/netns/' + ns):
                    # 75: the NIC is not plugged yet; a vanished netns: the host is deleted
                    print(f'[sg] {ns}: iptables-restore failed: {proc.stderr.strip()}',
                          flush=True)
    if updated:
        print(f'[sg] {updated} host(s) updated in {time.monotonic() - t0:.2f} s, '
              f'{len(_pending)} pending', flush=True)


# ---------------------------------------------------------------- Neutron's state
class NeutronDB:
    """Neutron's state straight from its database (read-only), the way neutron-server
    itself answers its agents: milliseconds per round whatever the API's load."""
    FIPS = 'SELECT floating_ip_address, fixed_ip_address, fixed_port_id FROM floatingips'
    PORTS = ("SELECT p.id, p.device_id, p.device_owner, ps.port_security_enabled "
             "FROM ports p LEFT JOIN portsecuritybindings ps ON ps.port_id = p.id")
    IPS = 'SELECT port_id, ip_address FROM ipallocations'
    BINDINGS = 'SELECT port_id, security_group_id FROM securitygroupportbindings'
    RULES = ('SELECT security_group_id, remote_group_id, direction, ethertype, protocol, '
             'port_range_min, port_range_max, remote_ip_prefix FROM securitygrouprules '
             'ORDER BY standard_attr_id')   # a stable text: restored only on change

    def __init__(self, url):
        self.url, self.db = urllib.parse.urlsplit(url), None

    @classmethod
    def from_config(cls):
        conf = os.environ.get('SANDBOX_NEUTRON_CONF') or os.path.join(
            os.environ.get('OS_NEUTRON_CONFIG_DIR', ''), 'neutron.conf')
        cp = configparser.ConfigParser(interpolation=None)
        if not cp.read(conf) or not cp.get('database', 'connection', fallback=''):
            return None
        url = cp.get('database', 'connection')
        return cls(url) if url.startswith('mysql+pymysql://') else None

    def _query(self, sql):
        import pymysql
        if self.db is None:
            u = self.url
            self.db = pymysql.connect(
                host=u.hostname or '127.0.0.1', port=u.port or 3306,
                user=urllib.parse.unquote(u.username or ''),
                password=urllib.parse.unquote(u.password or ''),
                database=u.path.lstrip('/'), autocommit=True,   # every SELECT sees now
                connect_timeout=5, read_timeout=30)
        try:
            with self.db.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall()
        except Exception:
            self.db.close()
            self.db = None
            raise

    def floating_ips(self):
        return [SimpleNamespace(floating_ip_address=f, fixed_ip_address=x, port_id=p)
                for f, x, p in self._query(self.FIPS)]

    def ports_and_rules(self):
        ports = {pid: SimpleNamespace(id=pid, device_id=dev, device_owner=owner,
                                      is_port_security_enabled=None if sec is None
                                      else bool(sec), fixed_ips=[], security_group_ids=[])
                 for pid, dev, owner, sec in self._query(self.PORTS)}
        for pid, ip in self._query(self.IPS):
            if pid in ports:
                ports[pid].fixed_ips.append({'ip_address': ip})
        for pid, gid in self._query(self.BINDINGS):
            if pid in ports:
                ports[pid].security_group_ids.append(gid)
        rules = [SimpleNamespace(security_group_id=g, remote_group_id=rg, direction=d,
                                 ether_type=e, protocol=pr, port_range_min=lo,
                                 port_range_max=hi, remote_ip_prefix=cidr)
                 for g, rg, d, e, pr, lo, hi, cidr in self._query(self.RULES)]
        return list(ports.values()), rules


class NeutronAPI:
    """The same through Neutron's API as the sandbox admin (seconds per round under load)."""

    def __init__(self, cloud):
        import openstack
        # part of the cloud, like Neutron's own agents: the internal endpoints
        # (sandbox/faults puts only the public ones behind its proxy)
        self.conn = openstack.connect(cloud=cloud, interface='internal')

    def floating_ips(self):
        return list(self.conn.network.ips())

    def ports_and_rules(self):
        return (list(self.conn.network.ports()),
                list(self.conn.network.security_group_rules()))


def main():
    source = None if os.environ.get('SANDBOX_AGENT_SOURCE') == 'api' else \
        NeutronDB.from_config()
    if source is None:
        source = NeutronAPI(sys.argv[1] if len(sys.argv) > 1 else 'sandbox-admin')
    ensure_chain()
    print(f'[agent] floating IPs via {CHAIN}; security groups '
          f'{"enforced" if ENFORCE_SG else "NOT enforced"}; following Neutron\'s '
          f'{"database" if isinstance(source, NeutronDB) else "API"} every {INTERVAL} s',
          flush=True)
    while True:
        t0 = time.monotonic()
        try:
            sync_floating_ips(source.floating_ips())
            if ENFORCE_SG:
                sync_security_groups(*source.ports_and_rules())
        except Exception as exc:  # noqa: BLE001 - an agent keeps going, like Neutron's
            print(f'[agent] sync failed: {exc}', flush=True)
        time.sleep(max(0.0, INTERVAL - (time.monotonic() - t0)))


if __name__ == '__main__':
    main()
