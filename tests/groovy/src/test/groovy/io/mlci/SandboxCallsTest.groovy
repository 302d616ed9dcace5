package io.mlci

import org.codehaus.groovy.ast.ClassNode
import org.codehaus.groovy.ast.CodeVisitorSupport
import org.codehaus.groovy.ast.ModuleNode
import org.codehaus.groovy.ast.expr.ConstructorCallExpression
import org.codehaus.groovy.ast.expr.MethodCallExpression
import org.codehaus.groovy.ast.expr.PropertyExpression
import org.codehaus.groovy.ast.expr.StaticMethodCallExpression
import org.codehaus.groovy.ast.expr.VariableExpression
import org.codehaus.groovy.control.CompilationUnit
import org.codehaus.groovy.control.Phases
import org.junit.Test

/**
 * The library runs sandboxed with no script approvals: every method its code calls on a receiver
 * (outside `sh`) must be one the sandbox whitelists. The calls are read from the code itself (the
 * Groovy AST of vars/ and the Jenkinsfile) and checked against tests/groovy/sandbox-calls.txt, which
 * names each one's whitelist entry and where it comes from.
 */
class SandboxCallsTest {

    static final File ROOT = LibraryTestBase.findRoot()
    /** Calls the sandbox refuses that a library is tempted to make (they queue a script approval). */
    static final Set<String> REFUSED = ['getCauses', 'causes', 'getClass', 'execute', 'evaluate', 'getRawBuild',
                                        'rawBuild', 'getInstance', 'setAccessible'] as Set

    /** Called name -> the files that call it: method calls on a receiver, static calls, constructors. */
    static Map<String, Set<String>> calls() {
        return scan(false)
    }

    /** Property names read on a receiver (x.causes is x.getCauses() to the sandbox). */
    static Set<String> properties() {
        return scan(true).keySet()
    }

    static Map<String, Set<String>> scan(boolean propertyReads) {
        Map<String, Set<String>> found = new TreeMap<String, Set<String>>()
        Map<String, Set<String>> read = new TreeMap<String, Set<String>>()
        List<File> sources = new File(ROOT, 'vars').listFiles().findAll { it.name.endsWith('.groovy') }.sort { it.name }
        sources << new File(ROOT, 'Jenkinsfile')
        sources.each { File source ->
            CompilationUnit unit = new CompilationUnit()
            unit.addSource(source.name, source.text)
            unit.compile(Phases.CONVERSION)
            CodeVisitorSupport visitor = new CodeVisitorSupport() {
                @Override
                void visitMethodCallExpression(MethodCallExpression call) {
                    boolean own = call.implicitThis ||
                        (call.objectExpression instanceof VariableExpression && call.objectExpression.name == 'this')
                    if (!own) {
                        found.get(call.methodAsString, new TreeSet<String>()) << source.name
                    }
                    super.visitMethodCallExpression(call)
                }

                @Override
                void visitPropertyExpression(PropertyExpression expression) {
                    read.get(expression.propertyAsString ?: '?', new TreeSet<String>()) << source.name
                    super.visitPropertyExpression(expression)
                }

                @Override
                void visitStaticMethodCallExpression(StaticMethodCallExpression call) {
                    found.get("${call.ownerType.name}.${call.method}".toString(), new TreeSet<String>()) << source.name
                    super.visitStaticMethodCallExpression(call)
                }

                @Override
                void visitConstructorCallExpression(ConstructorCallExpression call) {
                    found.get("new ${call.type.name}".toString(), new TreeSet<String>()) << source.name
                    super.visitConstructorCallExpression(call)
                }
            }
            unit.AST.modules.each { ModuleNode module ->
                module.statementBlock.visit(visitor)
                module.classes.each { ClassNode type -> type.methods.each { it.code?.visit(visitor) } }
            }
        }
        return propertyReads ? read : found
    }

    /** The listed calls: name -> [whitelist entry, where]. */
    static Map<String, List<String>> listed() {
        Map<String, List<String>> entries = [:]
        new File(ROOT, 'tests/groovy/sandbox-calls.txt').eachLine { String line ->
            if (line.trim() && !line.startsWith('#')) {
                List<String> fields = line.split('\t') as List<String>
                assert fields.size() == 3: "sandbox-calls.txt: name, whitelist entry and where, tab-separated: ${line}"
                assert !entries.containsKey(fields[0]): "sandbox-calls.txt lists ${fields[0]} twice"
                entries[fields[0]] = fields.subList(1, 3)
            }
        }
        return entries
    }

    @Test
    void 'every call the library makes is on the list, with its whitelist entry'() {
        Map<String, Set<String>> called = calls()
        Map<String, List<String>> known = listed()

        Map<String, Set<String>> missing = called.findAll { String name, Set<String> files -> !known.containsKey(name) }
        assert missing.isEmpty(): "calls not known to be whitelisted (add them to tests/groovy/sandbox-calls.txt " +
            "with their script-security entry, or avoid them): ${missing}"
        Collection<String> stale = known.keySet().findAll { !called.containsKey(it) }
        assert stale.isEmpty(): "sandbox-calls.txt lists calls the code no longer makes: ${stale}"
    }

    @Test
    void 'each entry is a whitelist signature, and none of the known refusals is called'() {
        listed().each { String name, List<String> entry ->
            assert entry[0] ==~ /(method|staticMethod|new|field|staticField) \S+( \S+)*/: "not a signature: ${entry[0]}"
            assert entry[0].split(' ').contains(name): "${name}: the entry ${entry[0]} is for another method"
        }
        assert calls().keySet().intersect(REFUSED).isEmpty()
        assert properties().intersect(REFUSED).isEmpty(): 'a property read the sandbox refuses (its getter)'
    }
}
