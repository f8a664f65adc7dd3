package io.qsup.qmp;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import org.junit.jupiter.api.Test;

/** qmp-shell syntax: what a typed line turns into, and where errors point. */
class QmpShellSyntaxTest {

    private static JsonNode json(String s) throws Exception {
        return QmpFraming.mapper().readTree(s);
    }

    private static void parsesTo(String line, String expected) throws Exception {
        assertThat(QmpShellSyntax.parseLine(line)).as(line).isEqualTo(json(expected));
    }

    private static QmpShellSyntax.ParseException error(String line) {
        try {
            QmpShellSyntax.parseLine(line);
        } catch (QmpShellSyntax.ParseException e) {
            return e;
        }
        throw new AssertionError("expected a parse error for: " + line);
    }

    @Test
    void commandWithoutArguments() throws Exception {
        parsesTo("query-status", "{\"execute\": \"query-status\"}");
        parsesTo("   query-status   ", "{\"execute\": \"query-status\"}");
    }

    @Test
    void valuesAreJsonWhereTheyParseElseStrings() throws Exception {
        parsesTo("cmd a=1 b=-2.5 c=true d=false e=null f=hello g=1e3 h=01 i=/dev/sda j=",
                "{\"execute\":\"cmd\",\"arguments\":{\"a\":1,\"b\":-2.5,\"c\":true,\"d\":false,\"e\":null,"
                        + "\"f\":\"hello\",\"g\":1000.0,\"h\":\"01\",\"i\":\"/dev/sda\",\"j\":\"\"}}");
    }

    @Test
    void objectsAndArraysMayContainBlanks() throws Exception {
        parsesTo("blockdev-add opts={\"driver\": \"null-co\", \"size\": [1, 2]} list=[\"a b\", 3]",
                "{\"execute\":\"blockdev-add\",\"arguments\":{\"opts\":{\"driver\":\"null-co\",\"size\":[1,2]},"
                        + "\"list\":[\"a b\",3]}}");
    }

    @Test
    void quotesGiveStringsWithBlanksAndKeepNumbersAsStrings() throws Exception {
        parsesTo("human-monitor-command command-line=\"info block\" id=\"42\" esc=\"a\\\"b\" lit='it is \"raw\"'",
                "{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"info block\",\"id\":\"42\","
                        + "\"esc\":\"a\\\"b\",\"lit\":\"it is \\\"raw\\\"\"}}");
    }

    @Test
    void dottedKeysNest() throws Exception {
        parsesTo("blockdev-add driver=qcow2 file.driver=file file.filename=/tmp/a.qcow2 a.b.c=1",
                "{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"qcow2\","
                        + "\"file\":{\"driver\":\"file\",\"filename\":\"/tmp/a.qcow2\"},\"a\":{\"b\":{\"c\":1}}}}");
    }

    @Test
    void aLineStartingWithABraceIsRawJson() throws Exception {
        parsesTo("  {\"execute\": \"query-status\", \"id\": \"mine\"}",
                "{\"execute\": \"query-status\", \"id\": \"mine\"}");
    }

    @Test
    void wordsFromTheShellKeepTheirBlanks() throws Exception {
        assertThat(QmpShellSyntax.parseWords(List.of("human-monitor-command", "command-line=info version", "n=3")))
                .isEqualTo(json("{\"execute\":\"human-monitor-command\","
                        + "\"arguments\":{\"command-line\":\"info version\",\"n\":3}}"));
        assertThat(QmpShellSyntax.parseWords(List.of("{\"execute\":", "\"stop\"}")))
                .isEqualTo(json("{\"execute\":\"stop\"}"));
    }

    @Test
    void aWordWithoutEqualsPointsAtThatWord() {
        QmpShellSyntax.ParseException e = error("block_resize device=hd0 size");
        assertThat(e.reason()).isEqualTo("expected key=value, got 'size'");
        assertThat(e.column()).isEqualTo(25);
        assertThat(e.getMessage()).isEqualTo("expected key=value, got 'size' at column 25\n"
                + "  block_resize device=hd0 size\n"
                + "                          ^");
    }

    @Test
    void errorPositions() {
        assertThat(error("cmd a={\"x\": 1").column()).as("unclosed brace").isEqualTo(7);
        assertThat(error("cmd a={\"x\": 1").reason()).isEqualTo("unclosed '{'");
        assertThat(error("cmd a=\"open").column()).as("unterminated quote").isEqualTo(7);
        assertThat(error("cmd a='open").reason()).isEqualTo("unterminated ' quote");
        assertThat(error("cmd a=\"x\"y").column()).as("text after quote").isEqualTo(10);
        assertThat(error("cmd a={\"x\": tru}").reason()).startsWith("invalid JSON value");
        assertThat(error("cmd a={\"x\": tru}").column()).isBetween(12, 16);
        assertThat(error("cmd =5").reason()).isEqualTo("missing key before '='");
        assertThat(error("cmd a..b=1").reason()).isEqualTo("empty part in key 'a..b'");
        assertThat(error("cmd a=1 a=2").reason()).isEqualTo("key 'a' is given twice");
        assertThat(error("cmd a=1 a=2").column()).isEqualTo(9);
        assertThat(error("cmd a=1 a.b=2").reason()).contains("already has a value");
        assertThat(error("a=1 cmd").reason()).isEqualTo("expected a command name first, got 'a=1'");
        assertThat(error("   ").reason()).startsWith("empty command line");
    }

    @Test
    void badRawJsonPointsIntoTheLine() {
        QmpShellSyntax.ParseException e = error("{\"execute\": \"stop\",}");
        assertThat(e.reason()).startsWith("invalid JSON");
        assertThat(e.column()).isEqualTo(20);
        assertThat(error("{\"arguments\": {}}").reason()).contains("needs an \"execute\" key");
    }

    @Test
    void parseKeepsTheUnquotedValuesAsWrittenByTheirKeyPath() throws Exception {
        QmpShellSyntax.Parsed p = QmpShellSyntax.parse(
                "blockdev-add node-name=123 file.size=1G q=\"42\" l='on' j={\"a\":1} e=");
        assertThat(p.command()).isEqualTo("blockdev-add");
        assertThat(p.bare()).containsOnly(java.util.Map.entry(List.of("node-name"), "123"),
                java.util.Map.entry(List.of("file", "size"), "1G"), java.util.Map.entry(List.of("e"), ""));
        // the message itself is typed by qmp-shell's rules, as parseLine gives it
        assertThat(p.message()).isEqualTo(QmpShellSyntax.parseLine(
                "blockdev-add node-name=123 file.size=1G q=\"42\" l='on' j={\"a\":1} e="));
        assertThat(p.message().path("arguments").path("node-name").isNumber()).isTrue();
        assertThat(QmpShellSyntax.parse("{\"execute\": \"x\", \"arguments\": {\"a\": 1}}").bare()).isEmpty();
    }
}
