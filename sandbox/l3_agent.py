"""Floating-IP dataplane for the sandbox, kept in step with Neutron (like an L3 agent).

Polls Neutron (as the sandbox admin) for floating IPs associated with a port and keeps
one iptables NAT chain in the root namespace equal to that set: a connection from the
machine to a floating IP is DNATed to the server's fixed IP; once disassociated, new
connections no longer reach it. Only the chain ``<PREFIX>-FIP`` is ever touched.

Run by ``sandbox/up`` with the sandbox virtualenv; stopped by ``sandbox/down`` by PID.
"""
import os
import subprocess
import sys
import time

import openstack

PREFIX = os.environ.get('SANDBOX_PREFIX', 'sbx').upper()
CHAIN = PREFIX + '-FIP'
INTERVAL = float(os.environ.get('SANDBOX_L3_INTERVAL', '0.5'))


def ipt(*args, check=True):
    return subprocess.run(['iptables', '-w', '-t', 'nat', *args], capture_output=True,
                          text=True, check=check)


def ensure_chain():
    if ipt('-S', CHAIN, check=False).returncode != 0:
        ipt('-N', CHAIN)
    if ipt('-C', 'OUTPUT', '-j', CHAIN, check=False).returncode != 0:
        ipt('-I', 'OUTPUT', '-j', CHAIN)


def current_rules():
    rules = {}
    for line in ipt('-S', CHAIN).stdout.splitlines():
        parts = line.split()
        if parts[:2] != ['-A', CHAIN] or '-d' not in parts:
            continue
        fip = parts[parts.index('-d') + 1].split('/')[0]
        fixed = parts[parts.index('--to-destination') + 1]
        rules[fip] = fixed
    return rules


def wanted_rules(conn):
    return {ip.floating_ip_address: ip.fixed_ip_address
            for ip in conn.network.ips()
            if ip.port_id and ip.fixed_ip_address}


def sync(conn):
    have, want = current_rules(), wanted_rules(conn)
    for fip, fixed in have.items():
        if want.get(fip) != fixed:
            ipt('-D', CHAIN, '-d', fip + '/32', '-j', 'DNAT', '--to-destination', fixed)
            print(f'[l3] {fip} -/-> {fixed}', flush=True)
    for fip, fixed in want.items():
        if have.get(fip) != fixed:
            ipt('-A', CHAIN, '-d', fip + '/32', '-j', 'DNAT', '--to-destination', fixed)
            print(f'[l3] {fip} ---> {fixed}', flush=True)


def main():
    conn = openstack.connect(cloud=sys.argv[1] if len(sys.argv) > 1 else 'sandbox-admin')
    ensure_chain()
    while True:
        try:
            sync(conn)
        except Exception as exc:  # noqa: BLE001 - an agent keeps going, like Neutron's
            print(f'[l3] sync failed: {exc}', flush=True)
        time.sleep(INTERVAL)


if __name__ == '__main__':
    main()
