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

    JsonNode command(String json) throws IOException {
        send(json + "\n");
        JsonNode m;
        do {
            m = read();
        } while (m != null && m.has("event"));
        return m;
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
