package io.qsup.vm;

import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs one VM's readiness check ({@link ReadyCheck}) for one QEMU process, from the moment it runs until the check
 * passes or {@code ready-timeout} passes, and completes {@link #result()} with true (ready) or false (missed, or the
 * probe was closed because the process ended).
 *
 * <p>Threading: one virtual thread {@code vm-ready NAME} polls; {@link #result()} may be read and waited on from any
 * thread; {@link #close} from any thread.
 */
final class ReadinessProbe implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ReadinessProbe.class);
    private static final long POLL_MILLIS = 200;
    private static final int TCP_CONNECT_MILLIS = 1000;
    /** How long the service has to answer the probe's CRLF. */
    private static final int TCP_ANSWER_MILLIS = 1000;

    private final String name;
    private final ReadyCheck check;
    private final Duration timeout;
    private final Supplier<AgentState> agent;
    private final long serialOffset;
    private final CompletableFuture<Boolean> result = new CompletableFuture<>();
    private final Thread thread;
    private volatile String detail = "";
    private volatile boolean closed;

    /**
     * @param serialOffset where the serial log ended before this QEMU started: only later lines count
     */
    ReadinessProbe(String name, ReadyCheck check, Duration timeout, Supplier<AgentState> agent, long serialOffset) {
        this.name = name;
        this.check = check;
        this.timeout = timeout;
        this.agent = agent;
        this.serialOffset = serialOffset;
        this.thread = Thread.ofVirtual().name("vm-ready " + name).unstarted(this::loop);
    }

    void start() {
        thread.start();
    }

    CompletableFuture<Boolean> result() {
        return result;
    }

    /** What passed, or why not. */
    String detail() {
        return detail;
    }

    private void loop() {
        long deadline = System.nanoTime() + timeout.toNanos();
        long[] offset = {serialOffset};
        StringBuilder partial = new StringBuilder();
        while (!closed) {
            String passed = switch (check) {
                case ReadyCheck.Agent a -> agent.get() == AgentState.CONNECTED ? "the guest agent answers" : null;
                case ReadyCheck.SerialLine s -> serialMatch(s, offset, partial);
                case ReadyCheck.Tcp t -> tcpHolds(t) ? "tcp " + t.host() + ":" + t.port() + " accepts" : null;
            };
            if (passed != null) {
                detail = passed;
                result.complete(true);
                return;
            }
            if (System.nanoTime() >= deadline) {
                detail = "not ready within ready-timeout " + timeout.toSeconds() + " s (" + describe() + ")";
                log.warn("VM {}: {}", name, detail);
                result.complete(false);
                return;
            }
            try {
                Thread.sleep(POLL_MILLIS);
            } catch (InterruptedException e) {
                break;
            }
        }
        detail = "the VM's QEMU ended before it was ready";
        result.complete(false);
    }

    private String describe() {
        return switch (check) {
            case ReadyCheck.Agent a -> "waiting for the guest agent";
            case ReadyCheck.SerialLine s -> "no serial line matched /" + s.pattern() + "/";
            case ReadyCheck.Tcp t -> "tcp " + t.host() + ":" + t.port() + " did not accept and answer";
        };
    }

    /** Reads what the serial log gained since the last look; the matching line, or null. */
    private static String serialMatch(ReadyCheck.SerialLine s, long[] offset, StringBuilder partial) {
        try (RandomAccessFile f = new RandomAccessFile(s.serialLog().toFile(), "r")) {
            long len = f.length();
            if (len < offset[0]) {
                offset[0] = 0; // the log was rotated or truncated
            }
            if (len == offset[0]) {
                return null;
            }
            byte[] buf = new byte[(int) Math.min(len - offset[0], 1 << 20)];
            f.seek(offset[0]);
            f.readFully(buf);
            offset[0] += buf.length;
            partial.append(new String(buf, StandardCharsets.UTF_8));
            int nl;
            while ((nl = partial.indexOf("\n")) >= 0) {
                String line = partial.substring(0, nl).replace("\r", "");
                partial.delete(0, nl + 1);
                if (s.pattern().matcher(line).find()) {
                    return "serial line '" + line.strip() + "'";
                }
            }
            return null;
        } catch (IOException e) {
            return null; // not written yet
        }
    }

    private static boolean tcpHolds(ReadyCheck.Tcp t) {
        try (Socket sock = new Socket()) {
            sock.connect(new InetSocketAddress(t.host(), t.port()), TCP_CONNECT_MILLIS);
            sock.setSoTimeout(TCP_ANSWER_MILLIS);
            sock.getOutputStream().write(new byte[] {'\r', '\n'});
            InputStream in = sock.getInputStream();
            return in.read() >= 0; // the service answered (a banner, or its reply to an empty line)
        } catch (SocketTimeoutException silent) {
            return false; // a hostfwd of a guest still booting holds the connection open without an answer
        } catch (IOException e) {
            return false;
        }
    }

    @Override
    public void close() {
        closed = true;
        thread.interrupt();
    }
}
