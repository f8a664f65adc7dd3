package io.qsup.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.qmp.QmpFraming;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.newsclub.net.unix.AFUNIXServerSocket;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A scripted QMP server on a real unix socket under /tmp, for faults QEMU will not produce on demand.
 *
 * <p>Each accepted connection runs the script step by step; when the script ends the server answers every further
 * command with {@code {"return": {}}} until the client goes away. Everything received is recorded.
 *
 * <p>Threads: one acceptor thread and one thread per connection; {@code received} and {@code failures} are
 * thread-safe lists, so tests may read them while the server runs.
 */
public final class FakeQmpServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(FakeQmpServer.class);

    /** One scripted action on a connection. */
    @FunctionalInterface
    public interface Step {
        void run(Conn c) throws IOException, InterruptedException;
    }

    /** A connection as the script sees it. */
    public final class Conn {
        private final AFUNIXSocket socket;
        private final OutputStream out;
        private final QmpFraming in;
        private final List<ObjectNode> mine = new ArrayList<>();
        private boolean bytewise;
        private ByteArrayOutputStream batch;

        Conn(AFUNIXSocket socket) throws IOException {
            this.socket = socket;
            this.out = socket.getOutputStream();
            this.in = new QmpFraming(socket.getInputStream(), 1024 * 1024);
        }

        FakeQmpServer server() {
            return FakeQmpServer.this;
        }

        /** Reads the next message from the client and records it; null at EOF. */
        public ObjectNode read() throws IOException {
            try {
                ObjectNode m = in.read();
                if (m != null) {
                    mine.add(m);
                    received.add(m);
                }
                return m;
            } catch (io.qsup.qmp.QmpProtocolException e) {
                throw new IOException(e.getMessage(), e);
            }
        }

        /** The n-th message received on this connection (0-based). */
        public ObjectNode receivedHere(int n) {
            return mine.get(n);
        }

        public ObjectNode last() {
            if (mine.isEmpty()) {
                throw new IllegalStateException("script replies before any command was read");
            }
            return mine.get(mine.size() - 1);
        }

        public void write(String text) throws IOException, InterruptedException {
            write(text.getBytes(StandardCharsets.UTF_8));
        }

        public void write(byte[] bytes) throws IOException, InterruptedException {
            if (batch != null) {
                batch.write(bytes);
                return;
            }
            if (bytewise) {
                for (byte b : bytes) {
                    out.write(b);
                    out.flush();
                    Thread.sleep(1); // give the client a chance to read each byte on its own
                }
                return;
            }
            out.write(bytes);
            out.flush();
        }

        public void send(JsonNode message) throws IOException, InterruptedException {
            write(QmpFraming.encode(message));
        }

        void close() {
            try {
                socket.close();
            } catch (IOException ignored) {
                // already closed by the client
            }
        }
    }

    /** Builds the script a server runs on each connection. */
    public static final class Script {
        private final List<Step> steps = new ArrayList<>();
        private boolean autoReply = true;

        public Script step(Step s) {
            steps.add(s);
            return this;
        }

        /** Sends a greeting like QEMU 7.2's, offering the given capabilities. */
        public Script greeting(String... capabilities) {
            return step(c -> c.send(greetingMessage(capabilities)));
        }

        /** Greeting, then answers the client's {@code qmp_capabilities}. */
        public Script handshake() {
            return greeting("oob").expect("qmp_capabilities").reply();
        }

        /** Writes text exactly as given (garbage, half messages). */
        public Script raw(String text) {
            return step(c -> c.write(text));
        }

        /** From now on every write goes out one byte at a time. */
        public Script bytewise() {
            return step(c -> c.bytewise = true);
        }

        /** Reads the next command; records a failure if it is not {@code command}. */
        public Script expect(String command) {
            return step(c -> {
                ObjectNode m = c.read();
                if (m == null) {
                    throw new IOException("client closed while the script expected '" + command + "'");
                }
                if (!command.equals(m.path("execute").asText())) {
                    c.server().failures.add("expected '" + command + "', got " + m);
                }
            });
        }

        /** Answers the last command with {@code {"return": {}}}. */
        public Script reply() {
            return reply(QmpFraming.mapper().createObjectNode());
        }

        /** Answers the last command with the given return value. */
        public Script reply(JsonNode ret) {
            return step(c -> c.send(replyMessage(c.last(), ret)));
        }

        /** Answers the n-th command of this connection (0 = the first after the handshake's qmp_capabilities). */
        public Script replyTo(int n, JsonNode ret) {
            return step(c -> c.send(replyMessage(c.receivedHere(n + 1), ret)));
        }

        /** Answers with an id nobody used. */
        public Script replyWithId(JsonNode id, JsonNode ret) {
            return step(c -> {
                ObjectNode m = QmpFraming.mapper().createObjectNode();
                m.set("return", ret);
                m.set("id", id);
                c.send(m);
            });
        }

        /** Answers the last command with an error. */
        public Script replyError(String errorClass, String desc) {
            return step(c -> {
                ObjectNode m = QmpFraming.mapper().createObjectNode();
                m.putObject("error").put("class", errorClass).put("desc", desc);
                copyId(c.last(), m);
                c.send(m);
            });
        }

        public Script event(String name) {
            return event(name, QmpFraming.mapper().createObjectNode());
        }

        public Script event(String name, JsonNode data) {
            return step(c -> {
                ObjectNode m = QmpFraming.mapper().createObjectNode();
                m.put("event", name);
                m.set("data", data);
                long now = System.currentTimeMillis();
                m.putObject("timestamp").put("seconds", now / 1000).put("microseconds", (now % 1000) * 1000);
                c.send(m);
            });
        }

        /** Runs the inner script's writes as one single write, so the client gets them in one read. */
        public Script oneWrite(Script inner) {
            return step(c -> {
                c.batch = new ByteArrayOutputStream();
                try {
                    for (Step s : inner.steps) {
                        s.run(c);
                    }
                } finally {
                    byte[] all = c.batch.toByteArray();
                    c.batch = null;
                    c.write(all);
                }
            });
        }

        /** Stops answering: keeps reading and recording until the client leaves, never replying. */
        public Script silence() {
            return step(c -> {
                while (c.read() != null) {
                    // never answer
                }
            });
        }

        /** Answers every message from now on with its own arguments (or {@code {}}), until the client leaves. */
        public Script echo() {
            return step(c -> {
                ObjectNode m;
                while ((m = c.read()) != null) {
                    JsonNode args = m.get("arguments");
                    c.send(replyMessage(m, args != null ? args : QmpFraming.mapper().createObjectNode()));
                }
            });
        }

        /** Stops reading and answering until the server is closed, so the client's writes back up. */
        public Script stall() {
            return step(c -> c.server().closedLatch.await());
        }

        public Script sleep(Duration d) {
            return step(c -> Thread.sleep(d.toMillis()));
        }

        /** Closes the connection; the script ends. */
        public Script disconnect() {
            return step(c -> {
                c.close();
                throw new ScriptEnd();
            });
        }

        /**
         * Sends one line of {@code bytes} bytes (a JSON reply with a huge string), streamed in chunks so the server
         * itself never holds it; stops quietly when the client hangs up.
         */
        public Script hugeLine(long bytes) {
            return step(c -> {
                byte[] head = "{\"return\": \"".getBytes(StandardCharsets.US_ASCII);
                byte[] chunk = new byte[64 * 1024];
                Arrays.fill(chunk, (byte) 'A');
                try {
                    c.write(head);
                    long left = bytes - head.length - 4;
                    while (left > 0) {
                        int n = (int) Math.min(chunk.length, left);
                        c.out.write(chunk, 0, n);
                        left -= n;
                    }
                    c.write("\"}\r\n");
                    c.server().hugeLineCompleted = true;
                } catch (IOException e) {
                    c.server().hugeLineAborted = true;
                    throw new ScriptEnd();
                }
            });
        }

        /** After the script, keep the connection open without answering instead of auto-replying. */
        public Script thenSilence() {
            autoReply = false;
            return this;
        }
    }

    private static final class ScriptEnd extends RuntimeException {
        ScriptEnd() {
            super(null, null, false, false);
        }
    }

    private final Script script;
    private final Path dir;
    private final Path socketPath;
    private final AFUNIXServerSocket server;
    private final List<ObjectNode> received = new CopyOnWriteArrayList<>();
    private final List<String> failures = new CopyOnWriteArrayList<>();
    private final List<Conn> conns = new CopyOnWriteArrayList<>();
    private volatile boolean hugeLineCompleted;
    private volatile boolean hugeLineAborted;
    private volatile boolean closed;
    private final java.util.concurrent.CountDownLatch closedLatch = new java.util.concurrent.CountDownLatch(1);

    private FakeQmpServer(Script script) throws IOException {
        this.script = script;
        this.dir = Files.createTempDirectory(Path.of("/tmp"), "qsupfake");
        this.socketPath = dir.resolve("qmp.sock");
        this.server = AFUNIXServerSocket.newInstance();
        server.bind(AFUNIXSocketAddress.of(socketPath));
        Thread.ofPlatform().name("fake-qmp-server accept").daemon(true).start(this::acceptLoop);
    }

    public static Script script() {
        return new Script();
    }

    /** Starts a server that runs {@code script} on every connection. */
    public static FakeQmpServer start(Script script) {
        try {
            return new FakeQmpServer(script);
        } catch (IOException e) {
            throw new IllegalStateException("cannot start the fake QMP server under /tmp: " + e.getMessage(), e);
        }
    }

    public static ObjectNode greetingMessage(String... capabilities) {
        ObjectNode g = QmpFraming.mapper().createObjectNode();
        ObjectNode qmp = g.putObject("QMP");
        ObjectNode version = qmp.putObject("version");
        version.putObject("qemu").put("micro", 0).put("minor", 2).put("major", 7);
        version.put("package", "fake");
        var caps = qmp.putArray("capabilities");
        for (String c : capabilities) {
            caps.add(c);
        }
        return g;
    }

    static ObjectNode replyMessage(ObjectNode command, JsonNode ret) {
        ObjectNode m = QmpFraming.mapper().createObjectNode();
        m.set("return", ret);
        copyId(command, m);
        return m;
    }

    private static void copyId(ObjectNode command, ObjectNode reply) {
        if (command.has("id")) {
            reply.set("id", command.get("id"));
        }
    }

    public Path socket() {
        return socketPath;
    }

    public QmpEndpoint endpoint() {
        return new QmpEndpoint.Unix(socketPath);
    }

    /** Every message received, on all connections, in order. */
    public List<ObjectNode> received() {
        return List.copyOf(received);
    }

    /** Commands named in received messages, in order. */
    public List<String> receivedCommands() {
        return received.stream().map(m -> m.path("execute").asText()).toList();
    }

    /** Script expectations that did not hold, e.g. an unexpected command. */
    public List<String> failures() {
        return List.copyOf(failures);
    }

    public int connections() {
        return conns.size();
    }

    /** True when the last {@link Script#hugeLine} was cut short because the client hung up. */
    public boolean hugeLineAborted() {
        return hugeLineAborted && !hugeLineCompleted;
    }

    private void acceptLoop() {
        while (!closed) {
            AFUNIXSocket s;
            try {
                s = server.accept();
            } catch (IOException e) {
                return;
            }
            int n = conns.size() + 1;
            Thread.ofPlatform().name("fake-qmp-server conn " + n).daemon(true).start(() -> serve(s));
        }
    }

    private void serve(AFUNIXSocket s) {
        Conn c;
        try {
            c = new Conn(s);
        } catch (IOException e) {
            return;
        }
        conns.add(c);
        try {
            for (Step step : script.steps) {
                step.run(c);
            }
            if (script.autoReply) {
                ObjectNode m;
                while ((m = c.read()) != null) {
                    c.send(replyMessage(m, QmpFraming.mapper().createObjectNode()));
                }
            } else {
                while (c.read() != null) {
                    // keep the connection open, answer nothing
                }
            }
        } catch (ScriptEnd e) {
            // the script closed the connection on purpose
        } catch (IOException e) {
            log.debug("fake QMP server: connection ended: {}", e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            c.close();
        }
    }

    @Override
    public void close() {
        closed = true;
        closedLatch.countDown();
        try {
            server.close();
        } catch (IOException ignored) {
            // nothing to release
        }
        for (Conn c : conns) {
            c.close();
        }
        try {
            Files.deleteIfExists(socketPath);
            Files.deleteIfExists(dir);
        } catch (IOException ignored) {
            // /tmp is cleaned eventually
        }
    }
}
