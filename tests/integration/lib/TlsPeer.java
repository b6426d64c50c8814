// tests/integration/lib/TlsPeer.java - a TLS echo server and client on Java's own TLS
// stack (JSSE: no OpenSSL, GnuTLS or NSS underneath), the negative control of
// test_agent_negative.sh. Run as a single source file (java TlsPeer.java ...).
//   server PORT KEYSTORE.p12 PASSWORD   accepts one connection, echoes one line
//   client HOST PORT MESSAGE            sends MESSAGE + "\n", prints the echoed line
import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;

public class TlsPeer {
	public static void main(String[] args) throws Exception {
		if (args.length == 4 && args[0].equals("server")) {
			KeyStore ks = KeyStore.getInstance("PKCS12");
			try (FileInputStream in = new FileInputStream(args[2])) {
				ks.load(in, args[3].toCharArray());
			}
			KeyManagerFactory kmf = KeyManagerFactory.getInstance("SunX509");
			kmf.init(ks, args[3].toCharArray());
			SSLContext ctx = SSLContext.getInstance("TLS");
			ctx.init(kmf.getKeyManagers(), null, null);
			try (SSLServerSocket ls = (SSLServerSocket) ctx.getServerSocketFactory()
					     .createServerSocket(Integer.parseInt(args[1]));
			     SSLSocket s = (SSLSocket) ls.accept()) {
				echo(s);
			}
		} else if (args.length == 4 && args[0].equals("client")) {
			// The test's certificate is self-signed: accept it.
			TrustManager[] any = { new X509TrustManager() {
				public void checkClientTrusted(X509Certificate[] c, String a) {}
				public void checkServerTrusted(X509Certificate[] c, String a) {}
				public X509Certificate[] getAcceptedIssuers() { return new X509Certificate[0]; }
			} };
			SSLContext ctx = SSLContext.getInstance("TLS");
			ctx.init(null, any, null);
			try (SSLSocket s = (SSLSocket) ctx.getSocketFactory()
					     .createSocket(args[1], Integer.parseInt(args[2]))) {
				OutputStream out = s.getOutputStream();
				out.write((args[3] + "\n").getBytes(StandardCharsets.UTF_8));
				out.flush();
				BufferedReader in = new BufferedReader(new InputStreamReader(
					s.getInputStream(), StandardCharsets.UTF_8));
				System.out.println(in.readLine());
			}
		} else {
			System.err.println("usage: TlsPeer server PORT KEYSTORE PASSWORD | client HOST PORT MESSAGE");
			System.exit(2);
		}
	}

	private static void echo(SSLSocket s) throws Exception {
		BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(),
									      StandardCharsets.UTF_8));
		String line = in.readLine();
		OutputStream out = s.getOutputStream();
		out.write((line + "\n").getBytes(StandardCharsets.UTF_8));
		out.flush();
	}
}
