package io.qsup.qmp;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits a byte stream into QMP messages (top-level JSON objects) and encodes messages for sending.
 *
 * <p>Messages are found by tracking brackets outside strings, not by newlines, so a message may span reads and lines,
 * and one read may hold several messages. Errors are QEMU's: a control character inside a string (an unclosed string
 * at the end of a line) ends the message at once with {@code JSON parse error, stray '"q\n'}, a duplicate key is a
 * parse error, and so on. After an error that leaves the stream out of step (garbage, a control character in a
 * string, a bracket that closes the wrong thing) the next {@link #read} first skips to the end of the line, so the
 * peer's next line is read as a new message: a broken line costs that line only. Strings may be single-quoted, as
 * QEMU's parser allows.
 *
 * <p>A message longer than the limit is a protocol error after which the stream is unusable; the buffer never grows
 * past the limit, so a hostile peer cannot make the reader allocate more than that. Used by the QMP client and by the
 * daemon's control server.
 *
 * <p>The guest agent's framing ({@link #delimited}) is the same plus one byte: the agent answers
 * {@code guest-sync-delimited} with {@link #AGENT_DELIMITER} (0xFF, which never occurs in UTF-8 text) before its reply.
 * A delimited reader drops whatever partial message or broken line it holds when it meets that byte and reports it
 * (see {@link #isDelimiter}), so a client can resynchronise with a confused or restarted agent.
 *
 * <p>Not thread-safe: one reader thread per instance.
 */
public final class QmpFraming {
    /** The largest message a QMP client accepts: 10 MiB, as libvirt and QEMU's Python library (cf. CVE-2018-5748). */
    public static final int MAX_MESSAGE_BYTES = 10 * 1024 * 1024;
    /** The deepest nesting of objects and arrays accepted, QEMU's limit. */
    public static final int MAX_NESTING = 1024;

    /** The byte the guest agent sends before its reply to {@code guest-sync-delimited}. */
    public static final byte AGENT_DELIMITER = (byte) 0xFF;
    /** What a delimited {@link #read} returns for {@link #AGENT_DELIMITER}; never handed out as a message. */
    private static final ObjectNode DELIMITER = JsonNodeFactory.instance.objectNode();
    private static final Pattern DUPLICATE = Pattern.compile("Duplicate field '(.*)'", Pattern.DOTALL);
    private static final byte[] CRLF = {'\r', '\n'};
    private static final int INITIAL_BUFFER = 4096;
    // Keep a buffer that grew for one big message only while it is useful; shrink after messages above this size.
    private static final int RETAINED_BUFFER = 64 * 1024;
    // How much of a broken string an error quotes.
    private static final int STRAY_LIMIT = 256;
    private static final int CONTEXT_LIMIT = 60;

    private final InputStream in;
    private final int maxMessageBytes;
    private final boolean delimited;
    private final byte[] chunk = new byte[8192];
    private int chunkPos;
    private int chunkLimit;
    private byte[] message = new byte[INITIAL_BUFFER];
    private int length;
    private final byte[] closers = new byte[MAX_NESTING];
    private boolean tooLarge;
    /** The last error left the stream inside a line that holds no message start: skip to its end first. */
    private boolean skipLine;

    /** Reads messages from {@code in}, refusing any message longer than {@code maxMessageBytes}. */
    public QmpFraming(InputStream in, int maxMessageBytes) {
        this(in, maxMessageBytes, false);
    }

    private QmpFraming(InputStream in, int maxMessageBytes, boolean delimited) {
        if (maxMessageBytes < 2) {
            throw new IllegalArgumentException("maxMessageBytes must be at least 2, got " + maxMessageBytes);
        }
        this.in = in;
        this.maxMessageBytes = maxMessageBytes;
        this.delimited = delimited;
    }

    /** A reader for the guest agent's stream, which also reports each {@link #AGENT_DELIMITER} it meets. */
    public static QmpFraming delimited(InputStream in, int maxMessageBytes) {
        return new QmpFraming(in, maxMessageBytes, true);
    }

    /** Whether {@code message}, returned by a delimited {@link #read}, stands for an {@link #AGENT_DELIMITER}. */
    public static boolean isDelimiter(ObjectNode message) {
        return message == DELIMITER;
    }

    /**
     * The shared Jackson mapper, for what needs databind beyond trees (reading into records, node factories of the
     * daemon); do not reconfigure it. Made on first use: QMP's own messages are read and written by
     * {@link JsonTrees}, so that the CLI never builds one.
     */
    public static ObjectMapper mapper() {
        return Mapper.MAPPER;
    }

    private static final class Mapper {
        static final ObjectMapper MAPPER = new ObjectMapper(JsonFactory.builder()
                .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(MAX_NESTING).build())
                .build());
    }

    /**
     * Reads the next message.
     *
     * @return the message, or {@code null} when the stream ends cleanly between messages
     * @throws QmpProtocolException on bytes that cannot start a message, malformed JSON, or a message over the limit;
     *     unless {@link #messageTooLarge}, the next call reads on from the next message or line
     * @throws EOFException when the stream ends inside a message
     */
    public ObjectNode read() throws IOException, QmpProtocolException {
        if (skipLine && !skipToNextLine()) {
            return null;
        }
        skipLine = false;
        length = 0;
        int depth = 0;
        byte quote = 0; // the quote that opened the string we are in, or 0 outside strings
        boolean escaped = false;
        int stringStart = 0;
        while (true) {
            if (chunkPos == chunkLimit && !fill()) {
                if (length == 0) {
                    return null;
                }
                throw new EOFException("stream ended in the middle of a QMP message after " + length + " bytes");
            }
            byte b = chunk[chunkPos++];
            if (delimited && b == AGENT_DELIMITER) {
                length = 0; // what came before the delimiter is stale by definition
                return DELIMITER;
            }
            if (depth == 0) {
                if (b == ' ' || b == '\t' || b == '\r' || b == '\n') {
                    continue;
                }
                if (b != '{' && b != '[') {
                    chunkPos--;
                    String error = strayStart();
                    skipLine = true;
                    throw new QmpProtocolException(error);
                }
                append(b);
                closers[depth++] = b == '{' ? (byte) '}' : (byte) ']';
                continue;
            }
            append(b);
            if (quote != 0) {
                if ((b & 0xff) < 0x20) {
                    // JSON strings hold no raw control characters: most likely the string was never closed
                    String token = stray(stringStart);
                    skipLine = b != '\n';
                    length = 0;
                    throw new QmpProtocolException("JSON parse error, stray '" + token + "'");
                }
                if (escaped) {
                    escaped = false;
                } else if (b == '\\') {
                    escaped = true;
                } else if (b == quote) {
                    quote = 0;
                }
            } else if (b == '"' || b == '\'') {
                quote = b;
                stringStart = length - 1;
            } else if (b == '{' || b == '[') {
                if (depth == MAX_NESTING) {
                    length = 0;
                    skipLine = true;
                    throw new QmpProtocolException("JSON nesting depth limit exceeded");
                }
                closers[depth++] = b == '{' ? (byte) '}' : (byte) ']';
            } else if (b == '}' || b == ']') {
                if (b != closers[depth - 1]) {
                    length = 0;
                    skipLine = true;
                    throw new QmpProtocolException("JSON parse error, unbalanced '" + (char) b + "': expected '"
                            + (char) closers[depth - 1] + "'");
                }
                if (--depth == 0) {
                    return parse();
                }
            }
        }
    }

    private boolean fill() throws IOException {
        int n = in.read(chunk, 0, chunk.length);
        if (n < 0) {
            return false;
        }
        chunkPos = 0;
        chunkLimit = n;
        return true;
    }

    /** Skips input up to and including the next newline; false when the stream ends first. */
    private boolean skipToNextLine() throws IOException {
        while (true) {
            if (chunkPos == chunkLimit && !fill()) {
                return false;
            }
            if (delimited && chunk[chunkPos] == AGENT_DELIMITER) {
                return true; // read() reports it
            }
            if (chunk[chunkPos++] == '\n') {
                return true;
            }
        }
    }

    private void append(byte b) throws QmpProtocolException {
        if (length == message.length) {
            if (length >= maxMessageBytes) {
                int limit = maxMessageBytes;
                tooLarge = true;
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
            JsonNode node = JsonTrees.read(message, 0, length);
            if (!(node instanceof ObjectNode obj)) {
                throw new QmpProtocolException("QMP input must be a JSON object");
            }
            return obj;
        } catch (JsonProcessingException e) {
            Matcher dup = DUPLICATE.matcher(String.valueOf(e.getOriginalMessage()));
            if (dup.matches()) {
                throw new QmpProtocolException("JSON parse error, duplicate key '" + dup.group(1) + "'", e);
            }
            throw new QmpProtocolException("JSON parse error, " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new QmpProtocolException("unreadable QMP message: " + e.getMessage(), e);
        } finally {
            if (message.length > RETAINED_BUFFER) {
                message = new byte[INITIAL_BUFFER];
            }
            length = 0;
        }
    }

    /** Whether the last {@link #read} failed because a message exceeded the limit; the stream is then unusable. */
    public boolean messageTooLarge() {
        return tooLarge;
    }

    /** The broken string from its quote to the control character that ended it, as QEMU quotes a stray token. */
    private String stray(int from) {
        int n = length - from;
        if (n <= STRAY_LIMIT) {
            return new String(message, from, n, StandardCharsets.UTF_8);
        }
        return new String(message, from, STRAY_LIMIT - 1, StandardCharsets.UTF_8) + "..."
                + (char) message[length - 1];
    }

    /** Why the byte at {@code chunkPos} cannot start a message, quoting what came; QEMU's words where it has some. */
    private String strayStart() {
        byte b = chunk[chunkPos];
        int end = chunkPos;
        while (end < chunkLimit && isLetter(chunk[end])) {
            end++;
        }
        String what = end > chunkPos
                ? "invalid keyword '" + new String(chunk, chunkPos, end - chunkPos, StandardCharsets.US_ASCII) + "'"
                : "stray " + describe(b);
        return "JSON parse error, " + what + " in " + describeRest() + "; a QMP message is a JSON object";
    }

    private static boolean isLetter(byte c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    }

    private static String describe(byte b) {
        if (b >= 0x20 && b < 0x7f) {
            return "'" + (char) b + "'";
        }
        return String.format("byte 0x%02x", b & 0xff);
    }

    private String describeRest() {
        int n = Math.min(chunkLimit - chunkPos, CONTEXT_LIMIT);
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
        byte[] json = JsonTrees.bytes(message);
        byte[] out = Arrays.copyOf(json, json.length + CRLF.length);
        System.arraycopy(CRLF, 0, out, json.length, CRLF.length);
        return out;
    }

    /** Writes one message and flushes; callers serialize writers themselves. */
    public static void write(OutputStream out, JsonNode message) throws IOException {
        out.write(encode(message));
        out.flush();
    }

    /** Compact JSON text of a message, for logs and output. */
    public static String toJson(JsonNode message) {
        return JsonTrees.text(message);
    }
}
