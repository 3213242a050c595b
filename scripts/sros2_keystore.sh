#!/usr/bin/env bash
# Create an SROS2 keystore for robotlearn's ROS 2 nodes (DDS-level authentication + encryption).
#
#   scripts/sros2_keystore.sh [KEYSTORE_DIR]        (default: ~/.robotlearn/sros2_keystore)
#
# Needs a ROS 2 installation with sros2 (`ros2 security`), e.g. /opt/ros/<distro>; the PyPI rclpy
# that robotlearn installs does not ship it. One enclave, /robotlearn, is shared by every robotlearn
# process of the deployment (env, safety bridge, MuJoCo robot, actor and learner nodes): copy the
# keystore to each machine, then export the variables this script prints before `ros2 launch`.
set -euo pipefail
KEYSTORE="${1:-$HOME/.robotlearn/sros2_keystore}"
ENCLAVE=/robotlearn
if ! command -v ros2 >/dev/null || ! ros2 security --help >/dev/null 2>&1; then
  echo "error: 'ros2 security' not found: source a ROS 2 installation with sros2 first" >&2
  exit 1
fi
mkdir -p "$(dirname "$KEYSTORE")"
[ -d "$KEYSTORE" ] || ros2 security create_keystore "$KEYSTORE"
ros2 security create_enclave "$KEYSTORE" "$ENCLAVE"
chmod -R go-rwx "$KEYSTORE"
cat <<MSG
keystore ready: $KEYSTORE (enclave $ENCLAVE). On every machine of the deployment:
  export ROS_SECURITY_KEYSTORE=$KEYSTORE
  export ROS_SECURITY_ENCLAVE_OVERRIDE=$ENCLAVE
  export ROS_SECURITY_ENABLE=true
  export ROS_SECURITY_STRATEGY=Enforce   # refuse to start without valid keys instead of running open
MSG
