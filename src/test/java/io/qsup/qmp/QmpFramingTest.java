package io.qsup.qmp;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** Framing as both sides use it: the client (10 MiB limit) and the control server (its own, smaller limit). */
class QmpFramingTest {

    private static QmpFraming framing(String text, int limit) {
        return new QmpFraming(new ByteArrayInputStream(text.getBytes(StandardCharsets.UTF_8)), limit);
    }

    /** Hands out one byte per read, like a peer writing byte by byte. */
    private static InputStream trickle(String text) {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        return new InputStream() {
            int i;

            @Override
            public int read() {
                return i < b.length ? b[i++] & 0xff : -1;
            }

            @Override
            public int read(byte[] buf, int off, int len) {
                if (i >= b.length) {
                    return -1;
                }
                buf[off] = b[i++];
                return 1;
            }
        };
    }

    @Test
    void readsSeveralMessagesMultiLineJsonAndBracesInsideStrings() throws Exception {
        QmpFraming f = framing("{\"a\": \"}{\\\"\"}\r\n{\"b\":\n  [1, {\"c\": 2}]\n}  {\"d\": 3}", 1024);
        assertThat(f.read().path("a").asText()).isEqualTo("}{\"");
        assertThat(f.read().path("b").get(1).path("c").asInt()).isEqualTo(2);
        assertThat(f.read().path("d").asInt()).isEqualTo(3);
        assertThat(f.read()).isNull();
    }

    @Test
    void reassemblesAMessageGivenOneByteAtATime() throws Exception {
        QmpFraming f = new QmpFraming(trickle("{\"return\": {\"status\": \"running\"}, \"id\": 7}\r\n"), 1024);
        assertThat(f.read().path("id").asInt()).isEqualTo(7);
        assertThat(f.read()).isNull();
    }

    @Test
    void serverSideLimitRefusesALargerMessage() {
        int limit = 1024 * 1024;
        String big = "{\"execute\": \"x\", \"arguments\": {\"s\": \"" + "a".repeat(limit) + "\"}}";
        assertThatThrownBy(() -> framing(big, limit).read())
                .isInstanceOf(QmpProtocolException.class)
                .hasMessage("QMP message larger than 1 MiB (1048576 bytes) refused");
    }

    @Test
    void aMessageExactlyAtTheLimitIsAccepted() throws Exception {
        String m = "{\"s\": \"" + "a".repeat(100) + "\"}";
        assertThat(framing(m, m.length()).read().path("s").asText()).hasSize(100);
    }

    @Test
    void garbageAndMalformedJsonAreProtocolErrors() {
        assertThatThrownBy(() -> framing("hello", 1024).read())
                .isInstanceOf(QmpProtocolException.class).hasMessageContaining("got 'h' followed by \"ello\"");
        assertThatThrownBy(() -> framing("{\"a\": tru}", 1024).read())
                .isInstanceOf(QmpProtocolException.class).hasMessageContaining("malformed JSON");
    }

    @Test
    void endOfStreamInsideAMessageIsReported() {
        assertThatThrownBy(() -> framing("{\"a\": ", 1024).read())
                .isInstanceOf(EOFException.class).hasMessageContaining("in the middle of a QMP message after 6 bytes");
    }

    @Test
    void writesCompactJsonWithCrLf() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        QmpFraming.write(out, QmpFraming.mapper().readTree("{ \"return\" : { } }"));
        assertThat(out.toString(StandardCharsets.UTF_8)).isEqualTo("{\"return\":{}}\r\n");
    }
}
