"""Populate the sandbox cloud through its own APIs (openstacksdk, as any operator would).

  bootstrap.py identity   projects, users, roles, services, endpoints (after keystone)
  bootstrap.py cloud      what a real cloud offers its users: flavors, base images, a
                          tenant network with a router to an external network that owns
                          the floating-IP pool, quotas for the demo project; then waits
                          until nova-compute is up and mapped
Configuration comes from the environment set by sandbox/up (SANDBOX_*).
"""
import os
import subprocess
import sys
import time

import openstack

ENV = os.environ
KEYSTONE = ENV.get('SANDBOX_KEYSTONE_URL', 'http://127.0.0.1:5000/v3')
PASSWORD = ENV.get('SANDBOX_PASSWORD', 'secret')
PRIVATE_CIDR = ENV.get('SANDBOX_PRIVATE_CIDR', '10.213.0.0/24')
PUBLIC_CIDR = ENV.get('SANDBOX_PUBLIC_CIDR', '10.214.0.0/24')
SERVICES = {('keystone', 'identity'): None,
            ('glance', 'image'): 'http://127.0.0.1:9292',
            ('nova', 'compute'): 'http://127.0.0.1:8774/v2.1',
            ('placement', 'placement'): 'http://127.0.0.1:8778',
            ('neutron', 'network'): 'http://127.0.0.1:9696'}
FLAVORS = [('m1.tiny', 1, 512, 1), ('m1.small', 1, 2048, 10), ('m1.medium', 2, 4096, 20),
           ('m1.large', 4, 8192, 40)]
ROOTFS_DIR = ENV.get('SANDBOX_ROOTFS_DIR', '')
BARE_VERSIONS = ('12', '13') if ROOTFS_DIR else ()
DEMO_QUOTAS = dict(instances=40, cores=80, ram=200 * 1024, key_pairs=20,
                   server_groups=20, server_group_members=40)
DEMO_NET_QUOTAS = dict(floating_ips=10, security_groups=20, security_group_rules=200,
                       networks=10, subnets=10, ports=100, routers=5)


def say(msg):
    print(f'[bootstrap] {msg}', flush=True)


def admin():
    return openstack.connect(auth_url=KEYSTONE, username='admin', password=PASSWORD,
                             project_name='admin', user_domain_id='default',
                             project_domain_id='default', region_name='RegionOne',
                             identity_api_version='3')


def _pool(cidr, first=10, last_offset=5):
    import ipaddress
    net = ipaddress.ip_network(cidr)
    return [{'start': str(net[first]), 'end': str(net[-1 - last_offset])}]


def identity():
    c = admin()
    idc = c.identity
    service_project = idc.create_project(name='service', domain_id='default')
    demo_project = idc.create_project(name='demo', domain_id='default',
                                      description='the sandbox user project')
    admin_role, member_role = idc.find_role('admin'), idc.find_role('member')
    service_role = idc.find_role('service', ignore_missing=True) or \
        idc.create_role(name='service')
    for name in ('glance', 'nova', 'placement', 'neutron'):
        user = idc.create_user(name=name, password=PASSWORD, domain_id='default',
                               default_project_id=service_project.id)
        idc.assign_project_role_to_user(service_project, user, admin_role)
        idc.assign_project_role_to_user(service_project, user, service_role)
    demo = idc.create_user(name='demo', password=PASSWORD, domain_id='default',
                           default_project_id=demo_project.id)
    idc.assign_project_role_to_user(demo_project, demo, member_role)
    for (name, kind), url in SERVICES.items():
        if url is None:
            continue
        svc = idc.create_service(name=name, type=kind)
        for iface in ('public', 'internal', 'admin'):
            idc.create_endpoint(service_id=svc.id, interface=iface, url=url,
                                region_id='RegionOne')
    say('identity: projects service+demo, users, roles, endpoints')


def wait_compute(c, timeout=180):
    deadline = time.time() + timeout
    mapped = False
    while time.time() < deadline:
        up = [s for s in c.compute.services()
              if s.binary == 'nova-compute' and s.state == 'up']
        if up and not mapped:
            subprocess.run(ENV['SANDBOX_NOVA_MANAGE'].split() + ['cell_v2', 'discover_hosts'],
                           check=True, capture_output=True)
            mapped = True
        if mapped and any(h.state == 'up' for h in c.compute.hypervisors()):
            return
        time.sleep(1)
    raise SystemExit('nova-compute did not come up; see .sandbox/logs/nova-compute.log')


def cloud():
    c = admin()
    demo_project = c.identity.find_project('demo')
    for name, vcpus, ram, disk in FLAVORS:
        c.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=disk, is_public=True)
    say('flavors: ' + ', '.join(f[0] for f in FLAVORS))
    image = c.image.create_image(
        name='debian-12', disk_format='raw', container_format='bare', visibility='public',
        os_distro='debian', os_version='12',
        data=b'spark-openstack sandbox base image: hosts boot from the machine\'s own '
             b'Debian 12 root (copy-on-write)\n',
        allow_duplicates=True)
    c.image.wait_for_status(image, status='active', wait=120)
    names = ['debian-12']
    # bare cloud images: servers boot on a real minimal Debian tree without Java
    # (sandbox/build_rootfs.sh), as a distribution's own cloud image would
    for version in BARE_VERSIONS:
        name = f'debian-{version}-bare'
        if not os.path.isfile(os.path.join(ROOTFS_DIR, name, '.built')):
            raise SystemExit(f'{ROOTFS_DIR}/{name} is missing; sandbox/up builds it')
        image = c.image.create_image(
            name=name, disk_format='raw', container_format='bare', visibility='public',
            os_distro='debian', os_version=version, sandbox_rootfs=name,
            data=f'spark-openstack sandbox bare image: hosts boot on the Debian {version} '
                 f'tree {name} (debootstrap minbase + cloud-init, no Java)\n'.encode(),
            allow_duplicates=True)
        c.image.wait_for_status(image, status='active', wait=120)
        names.append(name)
    say('images: ' + ', '.join(names))

    public = c.network.create_network(name='public', is_router_external=True,
                                      provider_network_type='flat',
                                      provider_physical_network='public')
    pub_gw = _pool(PUBLIC_CIDR, 1, 0)[0]['start']
    c.network.create_subnet(network_id=public.id, name='public-subnet', ip_version=4,
                            cidr=PUBLIC_CIDR, gateway_ip=pub_gw, is_dhcp_enabled=False,
                            allocation_pools=_pool(PUBLIC_CIDR))
    private = c.network.create_network(name='private', project_id=demo_project.id)
    priv_gw = _pool(PRIVATE_CIDR, 1, 0)[0]['start']
    subnet = c.network.create_subnet(network_id=private.id, name='private-subnet',
                                     ip_version=4, cidr=PRIVATE_CIDR, gateway_ip=priv_gw,
                                     allocation_pools=_pool(PRIVATE_CIDR),
                                     project_id=demo_project.id)
    router = c.network.create_router(name='router1', project_id=demo_project.id,
                                     external_gateway_info={'network_id': public.id})
    c.network.add_interface_to_router(router, subnet_id=subnet.id)
    say(f'networks: private {PRIVATE_CIDR} -> router1 -> public {PUBLIC_CIDR}')
    with open(ENV['SANDBOX_PRIVATE_NET_FILE'], 'w') as f:
        f.write(f'{private.id} {PRIVATE_CIDR} {priv_gw}\n')

    c.compute.update_quota_set(demo_project.id, **DEMO_QUOTAS)
    c.network.update_quota(demo_project.id, **DEMO_NET_QUOTAS)
    say('quotas: ' + ', '.join(f'{k}={v}' for k, v in {**DEMO_QUOTAS,
                                                        **DEMO_NET_QUOTAS}.items()))
    wait_compute(c)
    say('nova-compute up and mapped')


if __name__ == '__main__':
    {'identity': identity, 'cloud': cloud}[sys.argv[1]]()
