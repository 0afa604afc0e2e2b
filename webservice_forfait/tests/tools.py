"Helpers shared by the scenarios"
import datetime

from proteus import Model
from proteus.config import get_config
from trytond.modules.company.tests.tools import get_company


def set_up_staff(name="Marie-Line Joseph", config=None):
    "Make the current user an employee of the company and return it"
    Party = Model.get('party.party', config=config)
    Employee = Model.get('company.employee', config=config)
    User = Model.get('res.user', config=config)
    employee = Employee(party=Party(name=name), company=get_company())
    employee.party.save()
    employee.save()
    user = User((config or get_config()).user)
    user.employees.append(employee)
    user.employee = employee
    user.save()
    config = (config or get_config())
    config._context = User.get_preferences(True, {})
    return employee


def create_client(name, email, config=None):
    "Create a client party with an e-mail contact"
    Party = Model.get('party.party', config=config)
    party = Party(name=name)
    party.contact_mechanisms.new(type='email', value=email)
    party.save()
    return party


def subscribe(
        party, forfait='2h', start_date=None, quantity=1,
        invoice_recurrence='recurrence_yearly', config=None):
    "Run a subscription of party to a shipped forfait and return it"
    ModelData = Model.get('ir.model.data', config=config)
    Service = Model.get('sale.subscription.service', config=config)
    RuleSet = Model.get('sale.subscription.recurrence.rule.set', config=config)
    Subscription = Model.get('sale.subscription', config=config)
    context = (config or get_config()).context
    service = Service(ModelData.get_id(
            'webservice_forfait.service_forfait_%s' % forfait, context))
    recurrence = RuleSet(ModelData.get_id(
            'webservice_forfait.%s' % invoice_recurrence, context))
    subscription = Subscription(party=party)
    subscription.start_date = start_date or datetime.date.today()
    subscription.invoice_recurrence = recurrence
    line = subscription.lines.new()
    line.service = service
    line.quantity = quantity
    subscription.click('quote')
    subscription.click('run')
    return subscription


def log_time(request, *durations, billable=True, config=None):
    "Log timesheet lines of the given durations on request"
    Line = Model.get('timesheet.line', config=config)
    for duration in durations:
        line = Line(forfait_request=request)
        line.duration = duration
        line.billable = billable
        line.description = "Mise à jour"
        line.save()
    request.reload()
