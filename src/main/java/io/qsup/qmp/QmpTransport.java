package io.qsup.qmp;

import java.io.FileDescriptor;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

/**
 * Bytes in and out of one QMP socket (unix through junixsocket, or TCP), plus file descriptors on unix sockets.
 *
 * <p>Locking: {@link #send} holds {@code writeLock} so a message and the fds attached to it go out together; reads are
 * done by one reader thread only; {@link #close} may be called from any thread and never takes the write lock.
 */
final class QmpTransport implements AutoCloseable {
    private static final int UNIX_PATH_MAX = 108;

    private final Socket socket;
    private final AFUNIXSocket unix;
    private final InputStream in;
    private final OutputStream out;
    private final Object writeLock = new Object();

    private QmpTransport(Socket socket) throws IOException {
        this.socket = socket;
        this.unix = socket instanceof AFUNIXSocket u ? u : null;
        this.in = socket.getInputStream();
        this.out = socket.getOutputStream();
    }

    static QmpTransport connect(QmpEndpoint endpoint, Duration timeout) throws QmpConnectException {
        int ms = (int) Math.max(1, Math.min(Integer.MAX_VALUE, timeout.toMillis()));
        Socket s = null;
        try {
            switch (endpoint) {
                case QmpEndpoint.Unix u -> {
                    int len = u.path().toString().getBytes(StandardCharsets.UTF_8).length;
                    if (len >= UNIX_PATH_MAX) {
                        throw new QmpConnectException("cannot connect to QMP socket " + endpoint + ": the path is " + len
                                + " bytes long, unix sockets allow at most " + (UNIX_PATH_MAX - 1)
                                + "; use a shorter path", null);
                    }
                    AFUNIXSocket a = AFUNIXSocket.newInstance();
                    s = a;
                    a.connect(AFUNIXSocketAddress.of(u.path()), ms);
                }
                case QmpEndpoint.Tcp t -> {
                    s = new Socket();
                    s.setTcpNoDelay(true);
                    s.connect(new InetSocketAddress(t.host(), t.port()), ms);
                }
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

    /** A read timeout for the greeting; zero means block until data or close. */
    void setReadTimeout(Duration d) throws SocketException {
        socket.setSoTimeout((int) Math.min(Integer.MAX_VALUE, d.toMillis()));
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
        closeQuietly(socket);
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
