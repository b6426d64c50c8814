#!/usr/bin/env bash
# tests/e2e/test_fault_ring_small.sh - a BPF ring buffer far too small for the load.
#
# Two nodes; agent a with the default buffer, agent b with --events ringbuf --ring-size 4k
# --max-chunks 1 (the agent raises the ring to the floor of one captured call: 32 KiB,
# shared by the CPUs; the BPF side counts the records it cannot reserve).
# curl downloads an 8 MB random file over TLS 1.3 at full speed, then uploads 2 MB.
# Asserts:
#   - agent b counts its lost events (ecv_agent_lost_events_total > 0) and the holes
#     they leave (ecv_agent_gaps_total > 0), and keeps running;
#   - node b's copy alone (replayed offline through tvn --read): the lost data shows as
#     sequence holes, never as shifted data: every byte present is the file's byte at
#     that position, none twice;
#   - the live tvn, with both copies: b's holes are filled from a's copy: the download
#     and the upload complete, exactly once, at their positions (where a lost nothing).
# The steps and checks are ecvx_small_buffer's (lib_extra.sh), shared with
# test_fault_perf_small.sh.
set -u
. "$(dirname "$0")/lib_extra.sh"

SIZE=$((8 * 1024 * 1024))
ECVX_NET=10.78.7 ecvx_fault_setup ecvx-fg ringsmall $SIZE
ecvx_small_buffer --events ringbuf --ring-size 4k --max-chunks 1
echo "test_fault_ring_small: all passed"
