#!/usr/bin/env bash
# Creates the security group cluster.yaml names, and prints its id.
#   deploy/aws-security-group.sh VPC_ID ADMIN_CIDR [LOAD_BALANCER_SG]
# Admits: all traffic between the group's own members (Ray's GCS, object manager and agents);
# SSH from ADMIN_CIDR only (your address, e.g. 203.0.113.7/32); Serve's HTTP port 8000 from the
# load balancer's security group only, if given. Nothing else: the dashboard (8265), GCS (6379)
# and client (10001) ports are never open to the world.
set -euo pipefail
vpc=${1:?VPC id}
admin=${2:?admin CIDR, e.g. 203.0.113.7/32}
balancer=${3:-}
region=${AWS_REGION:-us-west-2}
sg=$(aws ec2 create-security-group --region "$region" --vpc-id "$vpc" --group-name toonserve-ray \
  --description "toonserve Ray cluster" --query GroupId --output text)
aws ec2 authorize-security-group-ingress --region "$region" --group-id "$sg" --protocol=-1 --source-group "$sg" >/dev/null
aws ec2 authorize-security-group-ingress --region "$region" --group-id "$sg" --protocol tcp --port 22 --cidr "$admin" >/dev/null
if [[ -n "$balancer" ]]; then
  aws ec2 authorize-security-group-ingress --region "$region" --group-id "$sg" --protocol tcp --port 8000 \
    --source-group "$balancer" >/dev/null
fi
echo "$sg"
