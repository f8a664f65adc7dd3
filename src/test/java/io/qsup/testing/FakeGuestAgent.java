package io.qsup.testing;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.qmp.QmpFraming;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.newsclub.net.unix.AFUNIXServerSocket;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

/**
 * A scripted guest agent on a real unix socket under /tmp, speaking qemu-ga's wire format: requests are JSON lines,
 * optionally preceded by 0xFF; {@code guest-sync-delimited} is answered with 0xFF and the echoed id. A {@link Script}
 * chooses the bytes sent for each request, so tests can send garbage, stale replies, half messages or nothing.
 *
 * <p>Threads: one acceptor thread, one thread per connection; the records are thread-safe lists.
 */
public final class FakeGuestAgent implements AutoCloseable {
    /** Decides what to send for a request on connection number {@code conn} (from 1); null sends nothing. */
    @FunctionalInterface
    public interface Script {
        byte[] answer(int conn, ObjectNode request, boolean afterDelimiter) throws IOException;
    }

    /** A request as received: the connection number, whether 0xFF came just before it, and the message. */
    public record Received(int conn, boolean afterDelimiter, ObjectNode request) {
        public String command() {
            return request.path("execute").asText();
        }
    }

    private final Path dir;
    private final Path socketPath;
    private final AFUNIXServerSocket server;
    private final Thread acceptor;
    private final AtomicInteger connections = new AtomicInteger();
    private final List<AFUNIXSocket> open = new CopyOnWriteArrayList<>();
    /** Every request received, in order. */
    public final List<Received> received = new CopyOnWriteArrayList<>();
    private volatile Script script;
    /** Set to make the next answer close the connection after it is sent. */
    private volatile int dropAfterRequests = -1;

    public FakeGuestAgent(Script script) throws IOException {
        this.script = script;
        this.dir = Files.createTempDirectory(Path.of("/tmp"), "qsup-fakega");
        this.socketPath = dir.resolve("ga.sock");
        this.server = AFUNIXServerSocket.newInstance();
        server.bind(AFUNIXSocketAddress.of(socketPath));
        this.acceptor = Thread.ofPlatform().name("fake-ga-accept").daemon(true).start(this::acceptLoop);
    }

    public QmpEndpoint endpoint() {
        return new QmpEndpoint.Unix(socketPath);
    }

    public void setScript(Script s) {
        this.script = s;
    }

    /** Closes the current connection after it has received this many more requests in total. */
    public void dropAfter(int requestsInTotal) {
        this.dropAfterRequests = requestsInTotal;
    }

    public int connections() {
        return connections.get();
    }

    /** The normal agent: sync echoes its id after 0xFF, everything else gets {@code {"return": {}}}. */
    public static byte[] normal(ObjectNode request) {
        if (request.path("execute").asText().equals("guest-sync-delimited")) {
            return syncReply(request);
        }
        return "{\"return\": {}}\n".getBytes(StandardCharsets.UTF_8);
    }

    /** 0xFF and the echo of a sync request's id. */
    public static byte[] syncReply(ObjectNode request) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.write(0xFF);
        b.writeBytes(("{\"return\": " + request.path("arguments").path("id").asLong() + "}\n")
                .getBytes(StandardCharsets.UTF_8));
        return b.toByteArray();
    }

    public static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            b.writeBytes(p);
        }
        return b.toByteArray();
    }

    public static byte[] text(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private void acceptLoop() {
        while (!server.isClosed()) {
            try {
                AFUNIXSocket s = server.accept();
                open.add(s);
                int n = connections.incrementAndGet();
                Thread.ofPlatform().name("fake-ga-conn " + n).daemon(true).start(() -> serve(s, n));
            } catch (IOException e) {
                return;
            }
        }
    }

    private void serve(AFUNIXSocket s, int n) {
        try (s) {
            InputStream in = s.getInputStream();
            OutputStream out = s.getOutputStream();
            ByteArrayOutputStream line = new ByteArrayOutputStream();
            boolean delimiter = false;
            int b;
            while ((b = in.read()) >= 0) {
                if (b == 0xFF) {
                    delimiter = true;
                    line.reset();
                    continue;
                }
                if (b != '\n') {
                    line.write(b);
                    continue;
                }
                String text = line.toString(StandardCharsets.UTF_8).trim();
                line.reset();
                if (text.isEmpty()) {
                    continue;
                }
                ObjectNode req = (ObjectNode) QmpFraming.mapper().readTree(text);
                received.add(new Received(n, delimiter, req));
                byte[] answer = script.answer(n, req, delimiter);
                delimiter = false;
                if (answer != null) {
                    out.write(answer);
                    out.flush();
                }
                if (dropAfterRequests >= 0 && received.size() >= dropAfterRequests) {
                    dropAfterRequests = -1;
                    return;
                }
            }
        } catch (IOException e) {
            // the client went away or the test closed us
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
        for (AFUNIXSocket s : open) {
            s.close();
        }
        Files.deleteIfExists(socketPath);
        Files.deleteIfExists(dir);
    }
}
