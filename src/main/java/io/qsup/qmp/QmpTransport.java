package io.qsup.qmp;

import java.io.FileDescriptor;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

/**
 * Bytes in and out of one QMP socket, plus file descriptors on unix sockets: a unix socket through junixsocket when the
 * session may pass fds (SCM_RIGHTS, which only junixsocket does), else through the JDK's own {@link SocketChannel},
 * which needs no native library and works on virtual threads; or TCP.
 *
 * <p>Only the junixsocket transport needs platform threads for its reads and writes (see {@link #needsPlatformThreads});
 * the JDK channel and the TCP socket park a virtual thread instead of blocking its carrier.
 *
 * <p>Locking: {@link #send} holds {@code writeLock} so a message and the fds attached to it go out together; reads are
 * done by one reader thread only; {@link #close} may be called from any thread and never takes the write lock.
 */
final class QmpTransport implements AutoCloseable {
    private static final int UNIX_PATH_MAX = 108;

    private final Socket socket;
    private final AFUNIXSocket unix;
    private final ChannelStreams channel;
    private final InputStream in;
    private final OutputStream out;
    private final Object writeLock = new Object();

    private QmpTransport(Socket socket) throws IOException {
        this.socket = socket;
        this.unix = socket instanceof AFUNIXSocket u ? u : null;
        this.channel = null;
        this.in = socket.getInputStream();
        this.out = socket.getOutputStream();
    }

    private QmpTransport(SocketChannel ch) {
        this.socket = null;
        this.unix = null;
        this.channel = new ChannelStreams(ch);
        this.in = channel;
        this.out = channel.output();
    }

    static QmpTransport connect(QmpEndpoint endpoint, Duration timeout) throws QmpConnectException {
        return connect(endpoint, timeout, true);
    }

    /** {@code fds} false: the session never passes file descriptors, so a unix socket needs no junixsocket. */
    static QmpTransport connect(QmpEndpoint endpoint, Duration timeout, boolean fds) throws QmpConnectException {
        int ms = (int) Math.max(1, Math.min(Integer.MAX_VALUE, timeout.toMillis()));
        Socket s = null;
        try {
            // an if chain, not a pattern switch: a pattern switch has a class made for it at its first run, which
            // costs a CLI run about 4 ms (the JDK's class-file API set up, then the class generated and verified)
            if (endpoint instanceof QmpEndpoint.Unix u) {
                int len = u.path().toString().getBytes(StandardCharsets.UTF_8).length;
                if (len >= UNIX_PATH_MAX) {
                    throw new QmpConnectException("cannot connect to QMP socket " + endpoint + ": the path is " + len
                            + " bytes long, unix sockets allow at most " + (UNIX_PATH_MAX - 1)
                            + "; use a shorter path", null);
                }
                if (!fds) {
                    // a unix connect completes or fails at once: no connect timeout to apply
                    SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                    try {
                        ch.connect(UnixDomainSocketAddress.of(u.path()));
                    } catch (IOException | RuntimeException e) {
                        ch.close();
                        throw e;
                    }
                    return new QmpTransport(ch);
                }
                AFUNIXSocket a = AFUNIXSocket.newInstance();
                s = a;
                a.connect(AFUNIXSocketAddress.of(u.path()), ms);
            } else {
                QmpEndpoint.Tcp t = (QmpEndpoint.Tcp) endpoint; // the only other kind
                s = new Socket();
                s.setTcpNoDelay(true);
                s.connect(new InetSocketAddress(t.host(), t.port()), ms);
            }
            return new QmpTransport(s);
        } catch (IOException e) {
            closeQuietly(s);
            String hint = endpoint instanceof QmpEndpoint.Unix
                    ? "; check the path and that the QEMU (or qsupd) owning it is running"
                    : "; check the host, the port and that QEMU listens there";
            throw new QmpConnectException("cannot connect to QMP socket " + endpoint + ": " + describe(e) + hint, e);
        }
    }

    private static String describe(IOException e) {
        String m = e.getMessage();
        return m == null || m.isBlank() ? e.getClass().getSimpleName() : m;
    }

    InputStream input() {
        return in;
    }

    boolean canPassFds() {
        return unix != null;
    }

    /**
     * Whether reads and writes must run on platform threads: junixsocket's blocking calls misbehave on virtual threads
     * (kohlschutter/junixsocket#172), the JDK's channel and socket do not.
     */
    boolean needsPlatformThreads() {
        return unix != null;
    }

    /** A read timeout for the greeting; zero means block until data or close. */
    void setReadTimeout(Duration d) throws SocketException {
        if (channel != null) {
            channel.setTimeout(d.toMillis());
        } else {
            socket.setSoTimeout((int) Math.min(Integer.MAX_VALUE, d.toMillis()));
        }
    }

    void send(byte[] bytes, FileDescriptor[] fds) throws IOException {
        synchronized (writeLock) {
            if (fds != null && fds.length > 0) {
                if (unix == null) {
                    throw new IOException("file descriptors can only be passed over a unix socket");
                }
                // junixsocket attaches these as SCM_RIGHTS to the next write, i.e. to this message.
                unix.setOutboundFileDescriptors(fds);
            }
            out.write(bytes);
            out.flush();
        }
    }

    @Override
    public void close() {
        if (channel != null) {
            channel.closeQuietly();
        } else {
            closeQuietly(socket);
        }
    }

    /**
     * Blocking streams over a unix {@link SocketChannel}, read by the reader thread only and written under the
     * transport's write lock. A read timeout (the greeting's) is a watchdog thread that closes the channel
     * when the time is up, and the read then fails as a timeout: no selector, so the read parks a virtual thread like
     * any other. The channel is useless after such a timeout, which ends the connect anyway.
     */
    private static final class ChannelStreams extends InputStream {
        private final SocketChannel ch;
        private volatile Thread watchdog;
        private volatile boolean timedOut;
        private volatile long timeoutMillis;

        ChannelStreams(SocketChannel ch) {
            this.ch = ch;
        }

        /** Arms (positive) or disarms (zero) the watchdog. */
        void setTimeout(long millis) {
            Thread old = watchdog;
            watchdog = null;
            if (old != null) {
                old.interrupt();
            }
            timeoutMillis = millis;
            if (millis <= 0) {
                return;
            }
            // a thread of the caller's kind: a CLI process, which runs on platform threads, would otherwise set up
            // the JDK's virtual-thread scheduler and its carrier thread for this timer alone (9 ms of a qsup list)
            Thread.Builder kind = Thread.currentThread().isVirtual() ? Thread.ofVirtual()
                    : Thread.ofPlatform().daemon(true);
            watchdog = kind.name("qmp-read-timeout").start(() -> {
                try {
                    Thread.sleep(millis);
                } catch (InterruptedException disarmed) {
                    return;
                }
                timedOut = true;
                closeQuietly();
            });
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            int n = read(one, 0, 1);
            return n < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (len == 0) {
                return 0;
            }
            try {
                return ch.read(ByteBuffer.wrap(b, off, len));
            } catch (IOException e) {
                if (timedOut) {
                    throw new SocketTimeoutException("no data within " + timeoutMillis + " ms");
                }
                throw e;
            }
        }

        OutputStream output() {
            return new OutputStream() {
                @Override
                public void write(int b) throws IOException {
                    write(new byte[] {(byte) b}, 0, 1);
                }

                @Override
                public void write(byte[] b, int off, int len) throws IOException {
                    ByteBuffer buf = ByteBuffer.wrap(b, off, len);
                    while (buf.hasRemaining()) {
                        ch.write(buf);
                    }
                }
            };
        }

        void closeQuietly() {
            // closing the channel wakes a reader blocked in read() with AsynchronousCloseException
            try {
                ch.close();
            } catch (IOException ignored) {
                // nothing left to release
            }
        }
    }

    private static void closeQuietly(Socket s) {
        if (s == null) {
            return;
        }
        // shutdown first: it wakes a reader blocked in recv() on Linux, which close() alone may not.
        try {
            if (!s.isClosed()) {
                s.shutdownInput();
            }
        } catch (IOException ignored) {
            // already gone
        }
        try {
            if (!s.isClosed()) {
                s.shutdownOutput();
            }
        } catch (IOException ignored) {
            // already gone
        }
        try {
            s.close();
        } catch (IOException ignored) {
            // nothing left to release
        }
    }
}
