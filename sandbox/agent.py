"""The sandbox's dataplane agent: what Neutron's L3 agent and firewall driver would do.

Polls Neutron (as the sandbox admin) and keeps the machine in step with it:
  * floating IPs: one iptables NAT chain in the root namespace (``<PREFIX>-FIP``) holds a
    DNAT rule per associated floating IP, so a connection from the machine to a floating
    IP reaches the server's fixed IP; after disassociation new connections no longer do;
  * security groups: each host's own namespace gets an iptables INPUT policy of DROP plus
    the ingress rules of its port's security groups (``remote_ip_prefix`` and
    ``remote_group_id`` both honoured; egress is left open, as in Neutron's default group);
    a port with port security disabled is not filtered.
Only the NAT chain above and the hosts' own namespaces are ever touched.

Run by ``sandbox/up`` with the sandbox virtualenv; stopped by ``sandbox/down`` by PID.
"""
import hashlib
import os
import subprocess
import sys
import time

import openstack

PREFIX = os.environ.get('SANDBOX_PREFIX', 'sbx')
CHAIN = PREFIX.upper() + '-FIP'
INTERVAL = float(os.environ.get('SANDBOX_AGENT_INTERVAL', '1'))
ENFORCE_SG = os.environ.get('SANDBOX_SECURITY_GROUPS', 'on') != 'off'


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


def sync_floating_ips(fips):
    have = current_nat()
    want = {ip.floating_ip_address: ip.fixed_ip_address for ip in fips
            if ip.port_id and ip.fixed_ip_address}
    for fip, fixed in have.items():
        if want.get(fip) != fixed:
            ipt_nat('-D', CHAIN, '-d', fip + '/32', '-j', 'DNAT', '--to-destination', fixed)
            print(f'[fip] {fip} -/-> {fixed}', flush=True)
    for fip, fixed in want.items():
        if have.get(fip) != fixed:
            ipt_nat('-A', CHAIN, '-d', fip + '/32', '-j', 'DNAT', '--to-destination', fixed)
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


_applied = {}


def sync_security_groups(ports, rules):
    groups, members = {}, {}
    for rule in rules:
        groups.setdefault(rule.security_group_id, []).append(rule)
    for port in ports:
        for gid in port.security_group_ids or []:
            members.setdefault(gid, set()).update(_port_ips(port))
    live = set()
    for port in ports:
        if not port.device_id or not port.device_owner.startswith('compute:'):
            continue
        ns = f'{PREFIX}-{port.device_id[:8]}'
        if not os.path.exists('/run/netns/' + ns):
            continue
        live.add(ns)
        text = ruleset(port, groups, members)
        digest = hashlib.sha1(text.encode()).hexdigest()
        if _applied.get(ns) == digest:
            continue
        proc = subprocess.run(['ip', 'netns', 'exec', ns, 'iptables-restore'], input=text,
                              capture_output=True, text=True)
        if proc.returncode == 0:
            _applied[ns] = digest
            print(f'[sg] {ns}: {text.count("-A INPUT -s")} ingress rule(s)', flush=True)
        else:
            print(f'[sg] {ns}: iptables-restore failed: {proc.stderr.strip()}', flush=True)
    for ns in set(_applied) - live:
        del _applied[ns]


def main():
    # part of the cloud, like Neutron's own agents: the internal endpoints (sandbox/faults
    # puts only the public ones behind its proxy)
    conn = openstack.connect(cloud=sys.argv[1] if len(sys.argv) > 1 else 'sandbox-admin',
                             interface='internal')
    ensure_chain()
    print(f'[agent] floating IPs via {CHAIN}; security groups '
          f'{"enforced" if ENFORCE_SG else "NOT enforced"}', flush=True)
    while True:
        try:
            sync_floating_ips(list(conn.network.ips()))
            if ENFORCE_SG:
                sync_security_groups(list(conn.network.ports()),
                                     list(conn.network.security_group_rules()))
        except Exception as exc:  # noqa: BLE001 - an agent keeps going, like Neutron's
            print(f'[agent] sync failed: {exc}', flush=True)
        time.sleep(INTERVAL)


if __name__ == '__main__':
    main()
