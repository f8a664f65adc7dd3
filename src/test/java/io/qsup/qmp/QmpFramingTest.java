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
                .isInstanceOf(QmpProtocolException.class)
                .hasMessage("JSON parse error, invalid keyword 'hello' in \"hello\"; a QMP message is a JSON object");
        assertThatThrownBy(() -> framing("{\"a\": tru}", 1024).read())
                .isInstanceOf(QmpProtocolException.class).hasMessageStartingWith("JSON parse error, Unrecognized token 'tru'");
    }

    @Test
    void endOfStreamInsideAMessageIsReported() {
        assertThatThrownBy(() -> framing("{\"a\": ", 1024).read())
                .isInstanceOf(EOFException.class).hasMessageContaining("in the middle of a QMP message after 6 bytes");
    }

    @Test
    void anUnclosedStringEndsAtTheNewlineWithQemusErrorAndTheNextLineIsAMessage() throws Exception {
        QmpFraming f = framing("{\"execute\": \"q\n{\"execute\":\"query-status\",\"id\":1}\n", 1024);
        // QEMU 7.2 answers this very input with: JSON parse error, stray '"q\n'
        assertThatThrownBy(f::read).isInstanceOf(QmpProtocolException.class)
                .hasMessage("JSON parse error, stray '\"q\n'");
        assertThat(f.read().path("id").asInt()).isEqualTo(1);
        assertThat(f.read()).isNull();
    }

    @Test
    void aControlCharacterInsideAStringEndsTheMessageAndTheRestOfItsLineIsSkipped() throws Exception {
        QmpFraming f = framing("{\"id\": \"a\u0001b\"}, {\"also\": \"skipped\"}\r\n{\"id\": 2}\r\n", 1024);
        assertThatThrownBy(f::read).isInstanceOf(QmpProtocolException.class)
                .hasMessage("JSON parse error, stray '\"a\u0001'");
        assertThat(f.read().path("id").asInt()).isEqualTo(2);
        assertThat(f.read()).isNull();
    }

    @Test
    void anUnclosedStringOnACrLfLineIsAlsoCaughtAndTheNextLineRead() throws Exception {
        QmpFraming f = new QmpFraming(trickle("{\"return\": \"runn\r\n{\"return\": {}, \"id\": 3}\r\n"), 1024);
        assertThatThrownBy(f::read).isInstanceOf(QmpProtocolException.class)
                .hasMessage("JSON parse error, stray '\"runn\r'");
        assertThat(f.read().path("id").asInt()).isEqualTo(3);
    }

    @Test
    void aBracketThatClosesTheWrongThingIsAnErrorNotAWedge() throws Exception {
        // QEMU itself would keep reading past this line, waiting for the ']'
        QmpFraming f = framing("{\"a\": [}\n{\"id\": 4}\n", 1024);
        assertThatThrownBy(f::read).isInstanceOf(QmpProtocolException.class)
                .hasMessage("JSON parse error, unbalanced '}': expected ']'");
        assertThat(f.read().path("id").asInt()).isEqualTo(4);
    }

    @Test
    void garbageCostsItsLineOnlyAndIsQuoted() throws Exception {
        QmpFraming f = framing("hello there {\"id\": 0}\n@\n{\"id\": 5}\n", 1024);
        assertThatThrownBy(f::read).isInstanceOf(QmpProtocolException.class)
                .hasMessageStartingWith("JSON parse error, invalid keyword 'hello' in \"hello there {");
        assertThatThrownBy(f::read).isInstanceOf(QmpProtocolException.class)
                .hasMessageStartingWith("JSON parse error, stray '@'");
        assertThat(f.read().path("id").asInt()).isEqualTo(5);
        assertThat(f.read()).isNull();
    }

    @Test
    void aDuplicateKeyIsAParseErrorAndTheNextMessageIsRead() throws Exception {
        QmpFraming f = framing("{\"execute\": \"stop\", \"execute\": \"cont\"} {\"id\": 6}", 1024);
        assertThatThrownBy(f::read).isInstanceOf(QmpProtocolException.class)
                .hasMessage("JSON parse error, duplicate key 'execute'");
        assertThat(f.read().path("id").asInt()).isEqualTo(6);
    }

    @Test
    void anArrayIsFramedAndRefusedAsQemuDoes() throws Exception {
        QmpFraming f = framing("[1, {\"a\": [2]}]\n{\"id\": 7}\n", 1024);
        assertThatThrownBy(f::read).isInstanceOf(QmpProtocolException.class)
                .hasMessage("QMP input must be a JSON object");
        assertThat(f.read().path("id").asInt()).isEqualTo(7);
    }

    @Test
    void singleQuotedStringsAreAcceptedAsByQemu() throws Exception {
        QmpFraming f = framing("{'execute': 'x}\"{', \"id\": \"it's\"}\n", 1024);
        var m = f.read();
        assertThat(m.path("execute").asText()).isEqualTo("x}\"{");
        assertThat(m.path("id").asText()).isEqualTo("it's");
    }

    @Test
    void nestingDeeperThanQemusLimitIsRefused() throws Exception {
        String deep = "{\"a\":" + "[".repeat(QmpFraming.MAX_NESTING) + "]".repeat(QmpFraming.MAX_NESTING) + "}";
        String ok = "{\"a\":" + "[".repeat(QmpFraming.MAX_NESTING - 1) + "]".repeat(QmpFraming.MAX_NESTING - 1) + "}";
        QmpFraming f = framing(deep + "\n" + ok + "\n", 1024 * 1024);
        assertThatThrownBy(f::read).isInstanceOf(QmpProtocolException.class)
                .hasMessage("JSON nesting depth limit exceeded");
        assertThat(f.read().has("a")).isTrue();
    }

    @Test
    void writesCompactJsonWithCrLf() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        QmpFraming.write(out, QmpFraming.mapper().readTree("{ \"return\" : { } }"));
        assertThat(out.toString(StandardCharsets.UTF_8)).isEqualTo("{\"return\":{}}\r\n");
    }
}
