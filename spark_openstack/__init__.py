"""spark-openstack: Spark + Hadoop clusters on OpenStack, driven through openstacksdk."""

__version__ = "0.1.0"
