package io.qsup.qemu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * A few lines of QMP for the acceptance test: greeting, negotiation, and blocking commands that skip events. The
 * test only asks QEMU what it built; the real client with deadlines lives in {@code io.qsup.qmp}.
 */
final class RawQmp implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final SocketChannel channel;
    private final BufferedReader in;
    private final OutputStream out;

    RawQmp(Path socket) throws IOException {
        channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        channel.connect(UnixDomainSocketAddress.of(socket));
        in = new BufferedReader(new InputStreamReader(Channels.newInputStream(channel), StandardCharsets.UTF_8));
        out = Channels.newOutputStream(channel);
        JsonNode greeting = JSON.readTree(line());
        if (!greeting.has("QMP")) {
            throw new IOException("not a QMP greeting: " + greeting);
        }
        execute("qmp_capabilities", null);
    }

    JsonNode execute(String command, ObjectNode args) throws IOException {
        ObjectNode msg = JSON.createObjectNode().put("execute", command);
        if (args != null) {
            msg.set("arguments", args);
        }
        out.write((JSON.writeValueAsString(msg) + "\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
        while (true) {
            JsonNode reply = JSON.readTree(line());
            if (reply.has("event")) {
                continue;
            }
            if (reply.has("error")) {
                throw new IOException(command + " failed: " + reply.get("error"));
            }
            return reply.get("return");
        }
    }

    JsonNode execute(String command) throws IOException {
        return execute(command, null);
    }

    static ObjectNode args() {
        return JSON.createObjectNode();
    }

    private String line() throws IOException {
        String l = in.readLine();
        if (l == null) {
            throw new IOException("QMP connection closed");
        }
        return l;
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
