package io.qsup.qmp;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.Arrays;

/**
 * Splits a byte stream into QMP messages (top-level JSON objects) and encodes messages for sending.
 *
 * <p>Messages are found by tracking brace depth outside strings, not by newlines, so a message may span reads and lines,
 * and one read may hold several messages. A message longer than the limit is a protocol error; the buffer never grows
 * past the limit, so a hostile peer cannot make the reader allocate more than that. Used by the QMP client and by the
 * daemon's control server. Not thread-safe: one reader thread per instance.
 */
public final class QmpFraming {
    /** The largest message a QMP client accepts: 10 MiB, as libvirt and QEMU's Python library (cf. CVE-2018-5748). */
    public static final int MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final byte[] CRLF = {'\r', '\n'};
    private static final int INITIAL_BUFFER = 4096;
    // Keep a buffer that grew for one big message only while it is useful; shrink after messages above this size.
    private static final int RETAINED_BUFFER = 64 * 1024;

    private final InputStream in;
    private final int maxMessageBytes;
    private final byte[] chunk = new byte[8192];
    private int chunkPos;
    private int chunkLimit;
    private byte[] message = new byte[INITIAL_BUFFER];
    private int length;

    /** Reads messages from {@code in}, refusing any message longer than {@code maxMessageBytes}. */
    public QmpFraming(InputStream in, int maxMessageBytes) {
        if (maxMessageBytes < 2) {
            throw new IllegalArgumentException("maxMessageBytes must be at least 2, got " + maxMessageBytes);
        }
        this.in = in;
        this.maxMessageBytes = maxMessageBytes;
    }

    /** The shared Jackson mapper for QMP JSON; do not reconfigure it. */
    public static ObjectMapper mapper() {
        return MAPPER;
    }

    /**
     * Reads the next message.
     *
     * @return the message, or {@code null} when the stream ends cleanly between messages
     * @throws QmpProtocolException on bytes that cannot start a message, malformed JSON, or a message over the limit
     * @throws EOFException when the stream ends inside a message
     */
    public ObjectNode read() throws IOException, QmpProtocolException {
        length = 0;
        int depth = 0;
        boolean inString = false;
        boolean escaped = false;
        while (true) {
            if (chunkPos == chunkLimit) {
                int n = in.read(chunk, 0, chunk.length);
                if (n < 0) {
                    if (length == 0) {
                        return null;
                    }
                    throw new EOFException("stream ended in the middle of a QMP message after " + length + " bytes");
                }
                chunkPos = 0;
                chunkLimit = n;
                continue;
            }
            byte b = chunk[chunkPos++];
            if (length == 0) {
                if (b == ' ' || b == '\t' || b == '\r' || b == '\n') {
                    continue;
                }
                if (b != '{') {
                    throw new QmpProtocolException("expected a JSON object starting with '{' but got " + describe(b)
                            + " followed by " + describeRest());
                }
                append(b);
                depth = 1;
                continue;
            }
            append(b);
            if (inString) {
                if (escaped) {
                    escaped = false;
                } else if (b == '\\') {
                    escaped = true;
                } else if (b == '"') {
                    inString = false;
                }
            } else if (b == '"') {
                inString = true;
            } else if (b == '{' || b == '[') {
                depth++;
            } else if ((b == '}' || b == ']') && --depth == 0) {
                return parse();
            }
        }
    }

    private void append(byte b) throws QmpProtocolException {
        if (length == message.length) {
            if (length >= maxMessageBytes) {
                int limit = maxMessageBytes;
                length = 0;
                message = new byte[INITIAL_BUFFER];
                throw new QmpProtocolException("QMP message larger than " + formatSize(limit) + " (" + limit
                        + " bytes) refused");
            }
            message = Arrays.copyOf(message, (int) Math.min((long) message.length * 2, maxMessageBytes));
        }
        message[length++] = b;
    }

    private ObjectNode parse() throws QmpProtocolException {
        try {
            JsonNode node = MAPPER.readTree(message, 0, length);
            if (!(node instanceof ObjectNode obj)) {
                throw new QmpProtocolException("expected a JSON object, got " + node.getNodeType());
            }
            return obj;
        } catch (JsonProcessingException e) {
            throw new QmpProtocolException("malformed JSON in QMP message: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new QmpProtocolException("unreadable QMP message: " + e.getMessage(), e);
        } finally {
            if (message.length > RETAINED_BUFFER) {
                message = new byte[INITIAL_BUFFER];
            }
            length = 0;
        }
    }

    private static String describe(byte b) {
        if (b >= 0x20 && b < 0x7f) {
            return "'" + (char) b + "'";
        }
        return String.format("byte 0x%02x", b & 0xff);
    }

    private String describeRest() {
        int n = Math.min(chunkLimit - chunkPos, 60);
        StringBuilder sb = new StringBuilder("\"");
        for (int i = 0; i < n; i++) {
            byte c = chunk[chunkPos + i];
            if (c == '\n') {
                sb.append("\\n");
            } else if (c == '\r') {
                sb.append("\\r");
            } else if (c >= 0x20 && c < 0x7f) {
                sb.append((char) c);
            } else {
                sb.append('.');
            }
        }
        return sb.append(n < chunkLimit - chunkPos ? "...\"" : "\"").toString();
    }

    static String formatSize(int bytes) {
        if (bytes % (1024 * 1024) == 0) {
            return bytes / (1024 * 1024) + " MiB";
        }
        if (bytes % 1024 == 0) {
            return bytes / 1024 + " KiB";
        }
        return bytes + " bytes";
    }

    /** Encodes one message as compact JSON followed by CRLF, as QEMU writes them. */
    public static byte[] encode(JsonNode message) {
        try {
            byte[] json = MAPPER.writeValueAsBytes(message);
            byte[] out = Arrays.copyOf(json, json.length + CRLF.length);
            System.arraycopy(CRLF, 0, out, json.length, CRLF.length);
            return out;
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot encode a JSON tree", e);
        }
    }

    /** Writes one message and flushes; callers serialize writers themselves. */
    public static void write(OutputStream out, JsonNode message) throws IOException {
        out.write(encode(message));
        out.flush();
    }

    /** Compact JSON text of a message, for logs and output. */
    public static String toJson(JsonNode message) {
        try {
            return MAPPER.writeValueAsString(message);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot encode a JSON tree", e);
        }
    }
}
