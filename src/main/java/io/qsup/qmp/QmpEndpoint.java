package io.qsup.qmp;

import java.nio.file.Path;

/** Where a QMP server listens: a unix socket path or a TCP host and port. */
public sealed interface QmpEndpoint {

    /** A QMP server on a unix socket, as QEMU's {@code -qmp unix:PATH,server=on}. */
    record Unix(Path path) implements QmpEndpoint {
        @Override
        public String toString() {
            return "unix:" + path;
        }
    }

    /** A QMP server on TCP, as QEMU's {@code -qmp tcp:HOST:PORT,server=on}. */
    record Tcp(String host, int port) implements QmpEndpoint {
        public Tcp {
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException("TCP port " + port + " is out of range 1-65535");
            }
        }

        @Override
        public String toString() {
            return "tcp:" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
        }
    }

    /**
     * Parses {@code unix:/path}, {@code tcp:HOST:PORT} (IPv6 as {@code tcp:[::1]:PORT}) or a bare path, which means unix.
     *
     * @throws IllegalArgumentException with a message naming the bad text and the accepted forms
     */
    static QmpEndpoint parse(String s) {
        String forms = "; use unix:/path/to/socket, tcp:HOST:PORT or a plain socket path";
        if (s == null || s.isBlank()) {
            throw new IllegalArgumentException("empty QMP socket address" + forms);
        }
        if (s.startsWith("unix:")) {
            String p = s.substring("unix:".length());
            if (p.isEmpty()) {
                throw new IllegalArgumentException("QMP socket '" + s + "' has no path" + forms);
            }
            return new Unix(Path.of(p));
        }
        if (s.startsWith("tcp:")) {
            String rest = s.substring("tcp:".length());
            String host;
            String port;
            if (rest.startsWith("[")) {
                int close = rest.indexOf(']');
                if (close < 0 || close + 1 >= rest.length() || rest.charAt(close + 1) != ':') {
                    throw new IllegalArgumentException("QMP socket '" + s + "' is not tcp:[IPV6]:PORT" + forms);
                }
                host = rest.substring(1, close);
                port = rest.substring(close + 2);
            } else {
                int colon = rest.lastIndexOf(':');
                if (colon <= 0) {
                    throw new IllegalArgumentException("QMP socket '" + s + "' needs a host and a port" + forms);
                }
                host = rest.substring(0, colon);
                port = rest.substring(colon + 1);
            }
            try {
                return new Tcp(host, Integer.parseInt(port));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("QMP socket '" + s + "' has a bad port '" + port + "'" + forms, e);
            }
        }
        if (s.matches("^[a-zA-Z][a-zA-Z0-9+.-]*:.*") && !s.contains("/")) {
            throw new IllegalArgumentException("QMP socket '" + s + "' has an unknown scheme" + forms);
        }
        return new Unix(Path.of(s));
    }
}
