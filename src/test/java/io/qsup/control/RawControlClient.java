package io.qsup.control;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

/** A deliberately naive line-oriented client, as a user with socat would be: bytes out, lines in. */
final class RawControlClient implements AutoCloseable {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    final AFUNIXSocket socket;
    private final BufferedReader in;
    private final OutputStream out;

    RawControlClient(Path path) throws IOException {
        socket = AFUNIXSocket.connectTo(AFUNIXSocketAddress.of(path.toFile()));
        socket.setSoTimeout(10_000);
        in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
        out = socket.getOutputStream();
    }

    void send(String text) throws IOException {
        out.write(text.getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    /** The next message, or null at EOF. */
    JsonNode read() throws IOException {
        String line = in.readLine();
        return line == null ? null : MAPPER.readTree(line);
    }

    /** Events read while waiting for a reply, in order. */
    final java.util.List<JsonNode> events = new java.util.ArrayList<>();

    /** Sends a command and returns its reply; events read on the way are kept in {@link #events}. */
    JsonNode command(String json) throws IOException {
        send(json + "\n");
        JsonNode m;
        while ((m = read()) != null && m.has("event")) {
            events.add(m);
        }
        return m;
    }

    /** The next event, taking first those read while waiting for replies. */
    JsonNode nextEvent() throws IOException {
        return events.isEmpty() ? read() : events.remove(0);
    }

    /** Reads the greeting and negotiates. */
    RawControlClient negotiated() throws IOException {
        JsonNode greeting = read();
        if (greeting == null || !greeting.has("QMP")) {
            throw new IOException("no greeting: " + greeting);
        }
        JsonNode r = command("{\"execute\":\"qmp_capabilities\"}");
        if (r == null || !r.has("return")) {
            throw new IOException("negotiation failed: " + r);
        }
        return this;
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
