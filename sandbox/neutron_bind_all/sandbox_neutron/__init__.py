"""ML2 mechanism driver that binds every port on any host.

The sandbox has no Neutron agents: the compute driver plugs ports into namespace bridges
itself and ``sandbox/l3_agent.py`` applies floating IPs. Binding is all Neutron needs to
hand Nova an ACTIVE port.
"""
from neutron_lib import constants as const
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api


class BindAllMechanismDriver(api.MechanismDriver):
    def initialize(self):
        pass

    @property
    def connectivity(self):
        return portbindings.CONNECTIVITY_L2

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], portbindings.VIF_TYPE_OVS,
                                {portbindings.CAP_PORT_FILTER: True,
                                 portbindings.OVS_HYBRID_PLUG: False},
                                status=const.PORT_STATUS_ACTIVE)
            return

    def filter_hosts_with_segment_access(self, context, segments, candidate_hosts,
                                         agent_getter):
        return set(candidate_hosts)
