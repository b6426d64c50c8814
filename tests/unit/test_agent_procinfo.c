/* tests/unit/test_agent_procinfo.c - procfs parsers of the agent: container ids from
 * cgroup paths (docker, containerd, cri-o, cgroup v1 and v2), LISTEN sockets from
 * /proc/net/tcp text, the default gateway and neighbours from /proc/net/route and
 * /proc/net/arp text, and the derived MAC fallback. Fixtures are copies of real files
 * with addresses edited. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../agent/netinfo.h"
#include "../../agent/procinfo.h"
#include "check_run.h"

#define ID63 "f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899"
#define ID "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899"

START_TEST(container_ids)
{
	static const char *const with_id[] = {
		"/system.slice/docker-" ID ".scope",
		"/docker/" ID,
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/"
		"cri-containerd-" ID ".scope",
		"/kubepods/besteffort/pod5e4a7f1c-1111-2222-3333-444455556666/" ID,
		"/kubepods.slice/kubepods-pod99.slice/crio-" ID ".scope",
		"/kubepods.slice/kubepods-pod99.slice/crio-conmon-" ID ".scope",
	};
	char out[80];

	for (size_t i = 0; i < sizeof(with_id) / sizeof(with_id[0]); i++) {
		memset(out, 0, sizeof(out));
		ck_assert_int_eq(procinfo_container_id(with_id[i], out, sizeof(out)), 0);
		ck_assert_str_eq(out, ID);
	}
	ck_assert_int_ne(
		procinfo_container_id("/user.slice/user-0.slice/session-3.scope", out, sizeof(out)),
		0);
	ck_assert_int_ne(procinfo_container_id("/", out, sizeof(out)), 0);
	/* 63 digits, or 65, are not an id */
	ck_assert_int_ne(procinfo_container_id("/docker/" ID "0", out, sizeof(out)), 0);
	ck_assert_int_ne(procinfo_container_id("/docker/" ID63, out, sizeof(out)), 0);
}
END_TEST

START_TEST(cgroup_path_prefers_v2)
{
	char out[256];

	ck_assert_int_eq(procinfo_cgroup_path("0::/system.slice/nginx.service\n", out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, "/system.slice/nginx.service");
	ck_assert_int_eq(procinfo_cgroup_path("12:pids:/docker/abc\n11:cpu,cpuacct:/docker/abc\n"
					      "0::/docker/v2\n",
					      out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, "/docker/v2");
	ck_assert_int_eq(procinfo_cgroup_path("12:pids:/docker/abc\n", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "/docker/abc");
	ck_assert_int_ne(procinfo_cgroup_path("", out, sizeof(out)), 0);
}
END_TEST

static const char tcp_text[] = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
			       "retrnsmt   uid  timeout inode\n"
			       "   0: 00000000:01BB 00000000:0000 0A 00000000:00000000 00:00000000 "
			       "00000000     0        0 1001 1 0 100 0 0 10 0\n"
			       "   1: 0100007F:9C40 0200007F:01BB 01 00000000:00000000 00:00000000 "
			       "00000000     0        0 1002 1 0 20 4 30 10 -1\n";
static const char tcp6_text[] =
	"  sl  local_address                         remote_address                        st "
	"tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	"   0: 00000000000000000000000000000000:20FB 00000000000000000000000000000000:0000 0A "
	"00000000:00000000 00:00000000 00000000     0        0 2001 1 0 100 0 0 10 0\n";

START_TEST(listening_ports)
{
	ck_assert(procinfo_tcp_text_listens(tcp_text, 443));
	/* 40000 (0x9C40) is an established socket, not a listener */
	ck_assert(!procinfo_tcp_text_listens(tcp_text, 40000));
	ck_assert(procinfo_tcp_text_listens(tcp6_text, 8443));
	ck_assert(!procinfo_tcp_text_listens(tcp6_text, 443));
	ck_assert(!procinfo_tcp_text_listens("", 443));
	ck_assert(!procinfo_tcp_text_listens(NULL, 443));
}
END_TEST

START_TEST(read_own_process)
{
	struct procinfo pi;

	ck_assert_int_eq(procinfo_read(getpid(), &pi), 0);
	ck_assert_str_ne(pi.comm, "");
	ck_assert_str_ne(pi.exe, "");
	ck_assert_ptr_nonnull(strstr(pi.exe, "test_agent_procinfo"));
	ck_assert_int_lt(procinfo_read(0x7ffffff0, &pi), 0);
}
END_TEST

static const char route_text[] =
	"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	"eth0\t00004D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
	"eth0\t00000000\t01004D0A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
static const char arp_text[] =
	"IP address       HW type     Flags       HW address            Mask     Device\n"
	"10.77.0.9        0x1         0x0         00:00:00:00:00:00     *        eth0\n"
	"10.77.0.1        0x1         0x2         52:54:00:12:34:56     *        eth0\n";

START_TEST(gateway_and_neighbours)
{
	uint8_t gw[4], mac[6], want_gw[4] = { 10, 77, 0, 1 }, incomplete[4] = { 10, 77, 0, 9 };
	uint8_t want_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	char ifname[16];

	ck_assert_int_eq(netinfo_parse_route(route_text, ifname, sizeof(ifname), gw), 0);
	ck_assert_str_eq(ifname, "eth0");
	ck_assert_mem_eq(gw, want_gw, 4);
	ck_assert_int_eq(netinfo_parse_arp(arp_text, gw, mac), 0);
	ck_assert_mem_eq(mac, want_mac, 6);
	ck_assert_int_ne(netinfo_parse_arp(arp_text, incomplete, mac), 0);
	ck_assert_int_ne(netinfo_parse_route("Iface\tDestination\n", ifname, sizeof(ifname), gw),
			 0);
}
END_TEST

START_TEST(fallback_macs)
{
	uint8_t a4[4] = { 10, 77, 0, 2 }, a[16], mac[6];
	uint8_t want[6] = { 0x02, 0xec, 10, 77, 0, 2 };
	struct pkt_l2 l2;
	uint8_t b4[4] = { 192, 0, 2, 7 }, b[16];

	tuple_addr_from_v4(a, a4);
	tuple_addr_from_v4(b, b4);
	netinfo_fallback_mac(a, mac);
	ck_assert_mem_eq(mac, want, 6);
	ck_assert(mac[0] & 0x02);    /* locally administered */
	ck_assert(!(mac[0] & 0x01)); /* unicast */
	/* an address no interface here owns (another namespace): both derived */
	netinfo_l2(NULL, a, b, 0, &l2);
	ck_assert_mem_eq(l2.src, want, 6);
	ck_assert_uint_eq(l2.dst[5], 7);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("agent_procinfo");
	TCase *tc = tcase_create("parsers");

	tcase_add_test(tc, container_ids);
	tcase_add_test(tc, cgroup_path_prefers_v2);
	tcase_add_test(tc, listening_ports);
	tcase_add_test(tc, read_own_process);
	tcase_add_test(tc, gateway_and_neighbours);
	tcase_add_test(tc, fallback_macs);
	suite_add_tcase(s, tc);
	return check_run(s);
}
