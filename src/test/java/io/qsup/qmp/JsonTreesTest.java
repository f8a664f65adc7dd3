package io.qsup.qmp;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.BigIntegerNode;
import com.fasterxml.jackson.databind.node.DoubleNode;
import com.fasterxml.jackson.databind.node.IntNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.LongNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.statistics.Statistics;
import org.junit.jupiter.api.Test;

/**
 * {@link JsonTrees} reads and writes exactly what databind's {@code ObjectMapper} would, configured as QMP's parser
 * was before: the same trees, node types included, the same bytes out, the same refusals. databind is the reference.
 */
class JsonTreesTest {
    private static final ObjectMapper MAPPER = new ObjectMapper(JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(QmpFraming.MAX_NESTING).build())
            .build());
    private static final ObjectReader READER = MAPPER.reader()
            .with(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .with(JsonReadFeature.ALLOW_SINGLE_QUOTES);

    @Property(tries = 500)
    void anyTreeIsWrittenAndReadBackAsDatabindDoes(@ForAll("trees") JsonNode tree) throws Exception {
        byte[] compact = MAPPER.writeValueAsBytes(tree);
        assertThat(new String(JsonTrees.bytes(tree), StandardCharsets.UTF_8))
                .isEqualTo(new String(compact, StandardCharsets.UTF_8));
        assertThat(JsonTrees.text(tree)).isEqualTo(MAPPER.writeValueAsString(tree));
        assertThat(JsonTrees.pretty(tree))
                .isEqualTo(MAPPER.writer(SerializationFeature.INDENT_OUTPUT).writeValueAsString(tree));
        JsonNode back = JsonTrees.read(compact, 0, compact.length);
        JsonNode reference = READER.readTree(compact);
        assertThat(back).isEqualTo(reference);
        assertSameNodeTypes(back, reference);
    }

    @Property(tries = 1000)
    void anyTextIsReadOrRefusedAsDatabindDoes(@ForAll("jsonishText") String text) {
        JsonNode reference;
        String refusal;
        try {
            reference = READER.readTree(text);
            refusal = null;
        } catch (JsonProcessingException e) {
            reference = null;
            refusal = e.getOriginalMessage();
        }
        if (reference == null || reference.isMissingNode()) {
            Statistics.label("text").collect("refused");
            assertThatThrownBy(() -> JsonTrees.read(text)).as(text).isInstanceOf(java.io.IOException.class);
            if (refusal != null) {
                String said = refusal;
                assertThatThrownBy(() -> JsonTrees.read(text)).as(text)
                        .isInstanceOfSatisfying(JsonProcessingException.class,
                                e -> assertThat(e.getOriginalMessage()).isEqualTo(said));
            }
            return;
        }
        Statistics.label("text").collect("read");
        JsonNode ours;
        try {
            ours = JsonTrees.read(text);
        } catch (java.io.IOException e) {
            throw new AssertionError("refused what databind reads: " + text, e);
        }
        assertThat(ours).as(text).isEqualTo(reference);
        assertSameNodeTypes(ours, reference);
    }

    @Test
    void numbersTakeTheNodeTypeOfTheirSize() throws Exception {
        JsonNode n = JsonTrees.read("[1, 4294967296, 18446744073709551616, 1.5, -0.0, 1e400]");
        assertThat(n.get(0)).isInstanceOf(IntNode.class);
        assertThat(n.get(1)).isInstanceOf(LongNode.class);
        assertThat(n.get(2)).isInstanceOf(BigIntegerNode.class);
        assertThat(n.get(2).bigIntegerValue()).isEqualTo(BigInteger.TWO.pow(64));
        assertThat(n.get(3)).isInstanceOf(DoubleNode.class);
        assertThat(n.get(5).doubleValue()).isInfinite();
        assertThat(JsonTrees.text(n)).isEqualTo(MAPPER.writeValueAsString(n));
    }

    @Test
    void duplicateKeysAreRefusedAndSingleQuotesAccepted() throws Exception {
        assertThatThrownBy(() -> JsonTrees.read("{\"a\": 1, \"b\": {\"c\": 1, \"c\": 2}}"))
                .isInstanceOfSatisfying(JsonProcessingException.class,
                        e -> assertThat(e.getOriginalMessage()).isEqualTo("Duplicate field 'c'"));
        String quoted = "{'execute': 'query-status', \"arguments\": {'x': 'a \"b\"'}}";
        assertThat(JsonTrees.read(quoted)).isEqualTo(READER.readTree(quoted));
        assertThat(JsonTrees.read(quoted).path("arguments").path("x").asText()).isEqualTo("a \"b\"");
    }

    @Test
    void nestingStopsAtQemusLimitWithoutRecursion() throws Exception {
        String deepest = "[".repeat(QmpFraming.MAX_NESTING) + "]".repeat(QmpFraming.MAX_NESTING);
        JsonNode n = JsonTrees.read(deepest);
        int depth = 0;
        while (n.size() > 0) {
            n = n.get(0);
            depth++;
        }
        assertThat(depth).isEqualTo(QmpFraming.MAX_NESTING - 1);
        String tooDeep = "[" + deepest + "]";
        assertThatThrownBy(() -> JsonTrees.read(tooDeep)).isInstanceOf(JsonProcessingException.class)
                .hasMessageContaining("nesting depth");
    }

    @Test
    void emptyInputHoldsNoValue() {
        assertThatThrownBy(() -> JsonTrees.read("  ")).isInstanceOf(java.io.IOException.class)
                .hasMessage("no JSON value");
    }

    @Test
    void printersOtherThanTheDefaultLayOutAsTheirObjectWriter() throws Exception {
        DefaultPrettyPrinter pp = new DefaultPrettyPrinter();
        pp.indentArraysWith(new DefaultIndenter("    ", "\n"));
        ObjectNode tree = JsonNodeFactory.instance.objectNode();
        tree.putArray("list").add(1).add("two").addObject().put("three", new BigDecimal("3.000"));
        tree.putArray("empty");
        tree.putObject("none");
        assertThat(JsonTrees.write(tree, pp)).isEqualTo(MAPPER.writer(pp).writeValueAsString(tree));
        assertThat(JsonTrees.write(tree, null)).isEqualTo(MAPPER.writeValueAsString(tree));
    }

    private static void assertSameNodeTypes(JsonNode a, JsonNode b) {
        assertThat(a.getClass()).isEqualTo(b.getClass());
        if (a.isObject()) {
            a.properties().forEach(e -> assertSameNodeTypes(e.getValue(), b.get(e.getKey())));
        } else if (a.isArray()) {
            for (int i = 0; i < a.size(); i++) {
                assertSameNodeTypes(a.get(i), b.get(i));
            }
        }
    }

    @Provide
    Arbitrary<JsonNode> trees() {
        return tree(4);
    }

    private static Arbitrary<JsonNode> tree(int depth) {
        JsonNodeFactory f = JsonNodeFactory.instance;
        Arbitrary<JsonNode> scalar = Arbitraries.oneOf(
                Arbitraries.strings().ofMaxLength(12).map(f::textNode),
                Arbitraries.strings().withChars("\"\\\n\t\u0000\u001f\u00e9\u2028\ud83d\ude00 a'").ofMaxLength(6)
                        .map(f::textNode),
                Arbitraries.integers().map(f::numberNode),
                Arbitraries.longs().map(f::numberNode),
                Arbitraries.bigIntegers().between(BigInteger.TWO.pow(64).negate(), BigInteger.TWO.pow(70))
                        .map(f::numberNode),
                Arbitraries.doubles().map(f::numberNode),
                Arbitraries.of(true, false).map(f::booleanNode),
                Arbitraries.just(f.nullNode()));
        if (depth == 0) {
            return scalar;
        }
        Arbitrary<JsonNode> child = tree(depth - 1);
        Arbitrary<JsonNode> object = Arbitraries.maps(Arbitraries.strings().ofMaxLength(5), child).ofMaxSize(4)
                .map(m -> {
                    ObjectNode o = f.objectNode();
                    m.forEach(o::set);
                    return o;
                });
        Arbitrary<JsonNode> array = child.list().ofMaxSize(4).map(l -> f.arrayNode().addAll(l));
        return Arbitraries.frequencyOf(
                Tuple.of(3, scalar), Tuple.of(2, object),
                Tuple.of(2, array));
    }

    /** Fragments of JSON, QMP and junk, glued at random: most texts are broken in some way, many are not. */
    @Provide
    Arbitrary<String> jsonishText() {
        List<String> parts = List.of("{", "}", "[", "]", ",", ":", "\"a\"", "\"b\"", "'c'", "\"", "'", "1", "-2",
                "1.5e3", "01", "1e", "99999999999999999999", "true", "false", "null", "nul", "NaN", " ", "\n", "\\",
                "\"\\u00e9\"", "\"\\x\"", "\u00e9", "\u0001", "//", "/*", "{\"execute\":\"query-status\"}");
        return Arbitraries.of(parts).list().ofMaxSize(14).map(l -> String.join("", l));
    }
}
