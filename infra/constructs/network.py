"""The existing VPC placement of the functions that reach LDAP servers (an on-premises AD
over a VPN, a directory in a private subnet): imported from context, nothing created."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Fn, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.settings import DirectoryNetwork

# The EC2 actions of AWS's AWSLambdaVPCAccessExecutionRole policy.
NETWORK_INTERFACE_ACTIONS = (
    "ec2:AssignPrivateIpAddresses",
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:UnassignPrivateIpAddresses",
)


class ImportedNetwork(Construct):
    """The VPC, subnets and security groups of ``DirectoryNetwork`` as CDK references."""

    def __init__(self, scope: Construct, construct_id: str, *, network: DirectoryNetwork) -> None:
        super().__init__(scope, construct_id)
        self.network = network
        # The subnets are named one by one, so the VPC's layout is never looked up (no account
        # access at synth) and its zones stay a deploy-time value nothing here uses.
        self.vpc = ec2.Vpc.from_vpc_attributes(
            self, "Vpc", vpc_id=network.vpc_id, availability_zones=Fn.get_azs()
        )
        self.subnets = [
            ec2.Subnet.from_subnet_id(self, f"Subnet{index}", subnet_id)
            for index, subnet_id in enumerate(network.subnet_ids)
        ]
        # Immutable: the deployer owns these groups and their rules; the stack adds none.
        self.security_groups = [
            ec2.SecurityGroup.from_security_group_id(self, f"SecurityGroup{index}", group_id, mutable=False)
            for index, group_id in enumerate(network.security_group_ids)
        ]

    def function_placement(self) -> dict[str, Any]:
        """The ``lambda_.Function`` arguments that place a function in these subnets."""
        return {
            "vpc": self.vpc,
            "vpc_subnets": ec2.SubnetSelection(subnets=self.subnets),
            "security_groups": self.security_groups,
        }

    def allow_network_interfaces(self, role: iam.Role) -> None:
        """What Lambda does with the function's role to attach it to the subnets: the actions
        of AWS's AWSLambdaVPCAccessExecutionRole without its log permissions on every group
        (the role already writes to its own log group only)."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="AttachToTheDirectorySubnets",
                actions=list(NETWORK_INTERFACE_ACTIONS),
                resources=["*"],
            )
        )
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason=(
                    "Lambda creates, describes and deletes the network interfaces of a function in a VPC "
                    "with its role, and these EC2 actions are only allowed on all resources (the Lambda "
                    "guide's execution role permissions for VPC access); no other action is granted on '*'."
                ),
            )
        )
